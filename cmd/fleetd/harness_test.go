package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/api"
)

// fleetdBin is the fleetd binary built once for the process tests.
var fleetdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleetd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fleetdBin = filepath.Join(dir, "fleetd")
	build := exec.Command("go", "build", "-o", fleetdBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fleetd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one fleetd process under test.
type proc struct {
	t      testing.TB
	dir    string // its files: machine-id, data/, config, socket, log
	cmd    *exec.Cmd
	log    *syncBuffer
	client *api.Client
	done   chan struct{}
	err    error // the process's exit, once done is closed
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newMachineDir makes a directory with a machine-id file for one fleetd.
func newMachineDir(t testing.TB, id string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fleetd-m-") // short: the socket path must stay under 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "machine-id"), []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// freeURL returns an http URL on a free loopback port.
func freeURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// baseArgs are the flags every test fleetd gets: its files in dir, the API on
// a unix socket there.
func baseArgs(dir string) []string {
	return []string{
		"-data_dir", filepath.Join(dir, "data"),
		"-machine_id_file", filepath.Join(dir, "machine-id"),
		"-api_socket", filepath.Join(dir, "fleet.sock"),
	}
}

// startProc starts fleetd with args and env in dir, without waiting.
func startProc(t testing.TB, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, dir: dir, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(fleetdBin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("fleetd in %s logged:\n%s", dir, p.log.String())
		}
	})
	return p
}

// startFleetd starts fleetd and waits until its API answers /health with 200.
func startFleetd(t testing.TB, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := startProc(t, dir, env, append(baseArgs(dir), args...)...)
	sock := filepath.Join(dir, "fleet.sock")
	c, err := api.NewClient(api.ClientConfig{Endpoint: "unix://" + sock, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.client = c
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: time.Second}
	p.waitFor(30*time.Second, "fleetd healthy", func() bool {
		resp, err := hc.Get("http://fleetd/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// waitFor polls cond until it holds; it fails the test after limit or when
// the process exits first.
func (p *proc) waitFor(limit time.Duration, what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		select {
		case <-p.done:
			p.t.Fatalf("%s: fleetd exited first (%v)", what, p.err)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("fleetd did not exit within %v", limit)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

// kill ends the process if it still runs.
func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// eventually polls cond, failing the test after limit.
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unitOptions turns a unit file's lines into API options.
func unitOptions(section string, lines ...string) []api.UnitOption {
	var out []api.UnitOption
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		out = append(out, api.UnitOption{Section: section, Name: k, Value: v})
	}
	return out
}

// launch creates and starts a unit through the API, as one PUT.
func launch(t testing.TB, c *api.Client, name string, opts []api.UnitOption) {
	t.Helper()
	if err := c.CreateUnit(context.Background(), api.Unit{Name: name, Options: opts, DesiredState: "launched"}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// unit reads a unit through the API, or the zero Unit on error.
func unit(c *api.Client, name string) api.Unit {
	u, err := c.Unit(context.Background(), name)
	if err != nil {
		return api.Unit{}
	}
	return u
}
