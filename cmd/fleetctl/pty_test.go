package main

import (
	"os"
	"reflect"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the controlling side and the
// terminal a program sees.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pseudo-terminals (%v): CI must provide /dev/ptmx", err)
		}
		t.Skipf("no pseudo-terminals here (%v): the interactive ssh shell needs one", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

// TestInteractiveShell: ssh without a command opens a shell with a remote
// terminal, puts the local terminal in raw mode meanwhile and restores it.
func TestInteractiveShell(t *testing.T) {
	_, pts := openPTY(t)
	before, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	rs := newRemoteSetup(t)
	rs.start(t, "here.service", 1)
	env := map[string]string{"FLEETCTL_STRICT_HOST_KEY_CHECKING": "false"}
	for k, v := range rs.env {
		if env[k] == "" {
			env[k] = v
		}
	}
	r := fleetctlWith(t, env, "", func(a *app) { a.stdin = pts }, "ssh", "--ssh-port="+rs.port, "here")
	if r.code != 0 || r.stdout != "remote: \n" {
		t.Fatalf("shell: %+v", r)
	}
	after, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}
	if cmds := rs.srv.Commands(); cmds[len(cmds)-1] != "" {
		t.Fatalf("not a shell: %q", cmds)
	}
}
