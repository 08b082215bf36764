package etcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/fleet-rebuild/fleet/core"
)

// childEnv names the environment variable that makes the test binary an etcd
// server process instead of running tests: its value is a directory for the
// data and the endpoints file.
const childEnv = "FLEET_ETCD_TEST_CHILD"

// runChildServer is the test binary as an etcd server process: it serves
// until killed, after writing its client URL to dir/endpoint.
func runChildServer(dir string) int {
	cfg := testServerConfig()
	cfg.Dir = filepath.Join(dir, "data")
	srv, err := StartEmbedded(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child etcd:", err)
		return 1
	}
	tmp := filepath.Join(dir, "endpoint.tmp")
	if err := os.WriteFile(tmp, []byte(srv.Endpoints()[0]), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "child etcd:", err)
		return 1
	}
	if err := os.Rename(tmp, filepath.Join(dir, "endpoint")); err != nil {
		fmt.Fprintln(os.Stderr, "child etcd:", err)
		return 1
	}
	err = <-srv.Err() // serves until killed
	fmt.Fprintln(os.Stderr, "child etcd:", err)
	return 1
}

// childServer starts an etcd server in a separate process (this test binary,
// see runChildServer) and returns its client URL and process, killed at the
// end of the test.
func childServer(t *testing.T) (string, *os.Process) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	t.Cleanup(func() {
		// The process may be stopped: continue it so that the kill is seen.
		for _, sig := range []os.Signal{syscall.SIGCONT, os.Kill} {
			if err := cmd.Process.Signal(sig); err != nil {
				t.Logf("signalling the child etcd: %v", err)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Logf("child etcd: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "endpoint"))
		if err == nil {
			return strings.TrimSpace(string(b)), cmd.Process
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			t.Fatalf("child etcd did not start within 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFrozenMember: a member that stops answering (SIGSTOP) while a watch
// is open on it keeps its TCP connection up; gRPC keepalive notices within
// seconds (the shortest keepalive gRPC allows is 10 s) and drops the
// connection, so that the client fails over instead of waiting for minutes;
// calls meanwhile fail with ErrUnavailable within their timeout.
func TestFrozenMember(t *testing.T) {
	t.Parallel()
	url, proc := childServer(t)
	cli := dial(t, ClientConfig{Endpoints: []string{url}, KeepAliveTimeout: time.Second})
	reg, err := New(cli, WithRequestTimeout(500*time.Millisecond), WithRetry(1, 0))
	must(t, err)
	ctx := t.Context()
	u, c := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, u, c))
	watch := reg.Notify(ctx, core.Scope{})
	must(t, reg.Settle(ctx))
	woken(watch)
	conn := cli.ActiveConnection()
	if s := conn.GetState(); s != connectivity.Ready {
		t.Fatalf("connection %v before freezing, want READY", s)
	}

	must(t, proc.Signal(syscall.SIGSTOP))
	waitStopped(t, proc.Pid)
	start := time.Now()
	if _, err := reg.Units(ctx); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Units with the member frozen: %v, want ErrUnavailable", err)
	}
	wctx, cancel := context.WithTimeout(ctx, DefaultKeepAliveTime+10*time.Second)
	defer cancel()
	if !conn.WaitForStateChange(wctx, connectivity.Ready) {
		t.Fatalf("connection to the frozen member still READY after %v", time.Since(start))
	}
	t.Logf("frozen member noticed after %v", time.Since(start))

	must(t, proc.Signal(syscall.SIGCONT))
	b, bc := testUnit("b.service", false, "b")
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := reg.CreateUnit(ctx, b, bc)
		if err == nil {
			break
		}
		if !errors.Is(err, core.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("CreateUnit after the member thawed: %v", err)
		}
	}
	waitWake(t, watch, "a change after the member thawed")
}

// waitStopped waits (at most 10 s) until every thread of process pid is
// stopped, as /proc shows it: a signal is delivered asynchronously.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !allStopped(t, pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped 10 s after SIGSTOP", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allStopped(t *testing.T, pid int) bool {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	must(t, err)
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			return false // a thread that ended meanwhile: look again
		}
		// The state follows the command name in parentheses, which may
		// contain spaces.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		if f := strings.Fields(rest); len(f) == 0 || f[0] != "T" {
			return false
		}
	}
	return len(stats) > 0
}
