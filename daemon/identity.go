package daemon

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxMachineID bounds the machine ID read from its file.
const maxMachineID = 128

// readMachineID reads this machine's ID: the first line of file, which must
// be a non-empty token of letters, digits, '-' and '_'.
func readMachineID(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("unable to determine local machine ID: %w", err)
	}
	id, _, _ := strings.Cut(string(data), "\n")
	id = strings.TrimSpace(id)
	switch {
	case id == "":
		return "", fmt.Errorf("unable to determine local machine ID: %s is empty", file)
	case len(id) > maxMachineID:
		return "", fmt.Errorf("machine ID in %s is longer than %d bytes", file, maxMachineID)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", fmt.Errorf("machine ID in %s contains %q: want letters, digits, '-' or '_'", file, c)
		}
	}
	return id, nil
}

// dataDir is fleetd's locked state directory.
type dataDir struct {
	path string
	lock *os.File
}

// openDataDir creates dir if needed and takes its lock, so that two fleetd
// processes never share one session.
func openDataDir(dir string) (*dataDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "fleetd.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		return nil, fmt.Errorf("data_dir %s is in use by another fleetd (pid %s): %w", dir, strings.TrimSpace(string(holder)), err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDir{path: dir, lock: f}, nil
}

// close releases the lock.
func (d *dataDir) close() error { return d.lock.Close() }

// session returns the session persisted in the directory, creating it on the
// first start: a restarted fleetd keeps its session, so it takes its presence
// (and its running units) back at once.
func (d *dataDir) session() (string, error) {
	file := filepath.Join(d.path, "session")
	data, err := os.ReadFile(file)
	if err == nil {
		s := strings.TrimSpace(string(data))
		if b, err := hex.DecodeString(s); err == nil && len(b) == 16 {
			return s, nil
		}
		return "", fmt.Errorf("session file %s is corrupt (want 32 hex digits); remove it to start a new session", file)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("session: %w", err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	s := hex.EncodeToString(b)
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	return s, nil
}

// detectPublicIP returns the first global unicast IPv4 address of the
// interface of the default route, or "" if there is none.
func detectPublicIP() string {
	iface := defaultRouteInterface()
	if iface == "" {
		return ""
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return ""
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// defaultRouteInterface reads the interface of the IPv4 default route from
// /proc/net/route.
func defaultRouteInterface() string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 2 && fields[1] == "00000000" {
			return fields[0]
		}
	}
	return ""
}
