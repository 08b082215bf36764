package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// pollEvery is how often waits look at what they wait for.
const pollEvery = 20 * time.Millisecond

// joinCgroups is a shell prelude that moves the shell into the cgroups listed
// in FLEET_CLUSTER_CGROUPS before it execs: every later exec keeps the PID, so
// the PID recorded is the final program's and everything it starts is inside
// the cluster's cgroups from its first instruction.
const joinCgroups = `set -e
for p in $FLEET_CLUSTER_CGROUPS; do echo $$ > "$p"; done
unset FLEET_CLUSTER_CGROUPS
`

// managerLauncher makes the machine: a private mount namespace with its own
// tmpfs /run and the machine's ID bind-mounted over /etc/machine-id, then the
// systemd user manager ($1) in it.
const managerLauncher = joinCgroups + `exec unshare --mount --propagation private /bin/sh -ec '
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/system
mount --bind "$FLEET_CLUSTER_MACHINE_ID" /etc/machine-id
unset FLEET_CLUSTER_MACHINE_ID
exec "$0" --user' "$1"
`

// nsLauncher runs a program ($2...) in the mount namespace of process $1: the
// machine's fleetd sees the machine's /run and /etc/machine-id.
const nsLauncher = joinCgroups + `pid=$1; shift
exec nsenter --mount="/proc/$pid/ns/mnt" -- "$@"
`

// plainLauncher only joins the cgroups and runs its arguments.
const plainLauncher = joinCgroups + `exec "$@"
`

// spawn starts a process in its own session with its output in logFile and
// records it at once. While this program runs it reaps the process; after it
// exits the process lives on, orphaned.
func (c *cluster) spawn(role, name, logFile string, env []string, args ...string) (clusterstate.Proc, error) {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return clusterstate.Proc{}, fmt.Errorf("%s %s: %w", role, name, err)
	}
	defer logf.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Dir = env, c.state.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return clusterstate.Proc{}, fmt.Errorf("start %s %s: %w", role, name, err)
	}
	p := clusterstate.Proc{Role: role, Name: name, PID: cmd.Process.Pid, Log: logFile}
	// A process that exited already has no start time; it is then not alive,
	// which the wait for its readiness reports with its log.
	p.Start, _ = clusterstate.StartTime(p.PID)
	go func() { _ = cmd.Wait() }() // only reaps; its exit is seen through /proc
	return p, c.state.Record(p)
}

// launcherArgs runs script with /bin/sh, in the cgroups sub under the cluster's
// roots when it has any.
func (c *cluster) launcherArgs(env *[]string, sub, script string, args ...string) ([]string, error) {
	if len(c.state.Cgroups) > 0 {
		files, err := procsFiles(c.state.Cgroups, sub)
		if err != nil {
			return nil, err
		}
		*env = append(*env, "FLEET_CLUSTER_CGROUPS="+strings.Join(files, " "))
	}
	return append([]string{"/bin/sh", "-c", script, "launcher"}, args...), nil
}

// waitFor polls cond until it holds, failing when limit passes, ctx ends or
// one of procs is no longer alive (then with the end of its log).
func waitFor(ctx context.Context, limit time.Duration, what string, procs []clusterstate.Proc, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		last := cond()
		if last == nil {
			return nil
		}
		for _, p := range procs {
			if !p.Alive() {
				return fmt.Errorf("%s: %s %s (pid %d) exited\n%s", what, p.Role, p.Name, p.PID, tail(p.Log))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// pingManager asks the systemd manager behind socket for its version.
func pingManager(ctx context.Context, socket string) error {
	if _, err := os.Stat(socket); err != nil {
		return err
	}
	conn, err := dbus.Dial("unix:path="+dbus.EscapeBusAddressValue(socket), dbus.WithContext(ctx))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		return err
	}
	var version string
	obj := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	return obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Manager", "Version").Store(&version)
}

// healthy asks a fleetd, an etcd member (base "http://host:port", reached
// from the network namespace at netns unless empty) or a unix socket
// ("unix:///path") for /health and wants 200.
func healthy(ctx context.Context, netns, endpoint string) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: dialerIn(netns)}}
	defer hc.CloseIdleConnections()
	url := endpoint + "/health"
	if sock, ok := strings.CutPrefix(endpoint, "unix://"); ok {
		hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
		url = "http://fleetd/health"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// freePort returns a loopback URL on a port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return "http://" + l.Addr().String(), nil
}

// systemdReason says why real systemd user managers cannot run here, or nil.
func systemdReason(binary string, roots []string) error {
	if os.Geteuid() != 0 {
		return errors.New("not root: mount namespaces and cgroups need root")
	}
	if fi, err := os.Stat(binary); err != nil || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("no systemd binary at %s", binary)
	}
	for _, tool := range []string{"unshare", "nsenter", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found in PATH", tool)
		}
	}
	if _, err := os.Stat("/etc/machine-id"); err != nil {
		return errors.New("no /etc/machine-id to bind-mount each machine's ID over")
	}
	for _, r := range roots {
		d, err := os.MkdirTemp(filepath.Dir(r), "fleet-cluster-check-")
		if err != nil {
			return fmt.Errorf("cannot create a cgroup beside %s: %w", r, err)
		}
		if err := os.Remove(d); err != nil {
			return fmt.Errorf("cgroup check: %w", err)
		}
	}
	return nil
}

// tail returns the last lines of a log file, for error messages.
func tail(file string) string {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "(no log at " + file + ")"
	}
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(data) > 2048 {
		data = data[len(data)-2048:]
	}
	return file + ":\n" + string(data)
}
