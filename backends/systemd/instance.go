package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
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
	raw, err := uc.SyscallConn()
	if err != nil {
		return "", fmt.Errorf("identify manager: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return "", fmt.Errorf("identify manager: %w", err)
	}
	if credErr != nil {
		return "", fmt.Errorf("identify manager: SO_PEERCRED: %w", credErr)
	}
	if cred.Pid <= 0 {
		return "", errors.New("identify manager: its PID is not visible in this PID namespace")
	}
	path := "/proc/" + strconv.Itoa(int(cred.Pid)) + "/stat"
	stat, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("identify manager: %w", err)
	}
	start, err := procStartTime(stat)
	if err != nil {
		return "", fmt.Errorf("identify manager: %s: %w", path, err)
	}
	return fmt.Sprintf("pid %d started at tick %d", cred.Pid, start), nil
}

// procStartTime returns field 22 (starttime) of a /proc/PID/stat line. Field
// 2, the command name in parentheses, may hold spaces and ')', so fields are
// counted after the last ')'.
func procStartTime(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no ')' closing the command name")
	}
	fields := bytes.Fields(stat[i+1:])
	const startField = 22 - 3 // fields[0] is field 3
	if len(fields) <= startField {
		return 0, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), startField+1)
	}
	v, err := strconv.ParseUint(string(fields[startField]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field 22 (starttime): %w", err)
	}
	return v, nil
}
