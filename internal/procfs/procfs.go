// Package procfs reads what fleet's tools and daemons need to know about a
// process: a few fields of Linux's /proc/PID/stat, and the credentials of the
// process at the other end of a unix socket.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ClockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const ClockTicks = 100

// Stat is the part of /proc/PID/stat fleet reads.
type Stat struct {
	// State is field 3: R running, S sleeping, T stopped, Z zombie, X dead, ….
	State byte
	// UTime and STime are fields 14 and 15: user and system CPU time in clock ticks.
	UTime, STime uint64
	// StartTime is field 22: when the process started, in clock ticks after
	// boot. With the PID it tells a process from a later one reusing its PID.
	StartTime uint64
}

// CPUSeconds is the user plus system CPU time the process has used.
func (s Stat) CPUSeconds() float64 {
	return float64(s.UTime+s.STime) / ClockTicks
}

// Exited reports whether the process has ended (a zombie, or dead).
func (s Stat) Exited() bool {
	return s.State == 'Z' || s.State == 'X'
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	data, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	s, err := ParseStat(data)
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseStat parses a /proc/PID/stat line. Field 2, the command name in
// parentheses, may hold spaces and ')', so fields are counted after the last
// ')'.
func ParseStat(line []byte) (Stat, error) {
	i := bytes.LastIndexByte(line, ')')
	if i < 0 {
		return Stat{}, errors.New("no ')' closing the command name")
	}
	fields := bytes.Fields(line[i+1:])
	// fields[0] is field 3.
	const state, utime, stime, start = 3 - 3, 14 - 3, 15 - 3, 22 - 3
	if len(fields) <= start {
		return Stat{}, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), start+1)
	}
	if len(fields[state]) != 1 {
		return Stat{}, fmt.Errorf("field 3 (state) %q is not one letter", fields[state])
	}
	s := Stat{State: fields[state][0]}
	for _, f := range []struct {
		n   int
		dst *uint64
	}{{utime, &s.UTime}, {stime, &s.STime}, {start, &s.StartTime}} {
		v, err := strconv.ParseUint(string(fields[f.n]), 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("field %d: %w", f.n+3, err)
		}
		*f.dst = v
	}
	return s, nil
}

// PeerCred returns the credentials of the process at the other end of a unix
// socket (SO_PEERCRED), as they were when it connected. Its PID is 0 when
// that process is not visible in this PID namespace.
func PeerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return cred, nil
}
