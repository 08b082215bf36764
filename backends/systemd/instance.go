package systemd

import (
	"errors"
	"fmt"
	"net"

	"github.com/fleet-rebuild/fleet/internal/procfs"
)

// identity is what identifies a manager process: instance (see peerInstance),
// or "" and the reason it could not be found.
type identity struct {
	instance string
	err      error
}

// peerInstance identifies the manager process at the other end of nc: its PID
// (SO_PEERCRED) and its start time in clock ticks after boot (field 22 of
// /proc/PID/stat), which tells apart a new process that reuses the PID. The
// same manager gives the same identity on every connection, also after a
// daemon-reexec, which keeps the PID and the process.
func peerInstance(nc net.Conn) (string, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return "", fmt.Errorf("identify manager: %T is not a unix socket connection", nc)
	}
	cred, err := procfs.PeerCred(uc)
	if err != nil {
		return "", fmt.Errorf("identify manager: %w", err)
	}
	if cred.Pid <= 0 {
		return "", errors.New("identify manager: its PID is not visible in this PID namespace")
	}
	stat, err := procfs.ReadStat(int(cred.Pid))
	if err != nil {
		return "", fmt.Errorf("identify manager: %w", err)
	}
	return fmt.Sprintf("pid %d started at tick %d", cred.Pid, stat.StartTime), nil
}
