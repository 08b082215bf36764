package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// TestEnvironment: every global flag has its FLEETCTL_* form, applied before
// the command line so explicit flags win; a bad value is an error.
func TestEnvironment(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{map[string]string{"FLEETCTL_DRIVER": "bogus"}, []string{"list-units"}, 1, `unknown driver "bogus"`},
		{map[string]string{"FLEETCTL_DRIVER": "bogus"}, []string{"--driver=API", "--endpoint=ftp://x/", "list-units"}, 1, `unsupported scheme "ftp"`},
		{map[string]string{"FLEETCTL_ENDPOINT": "noscheme"}, []string{"list-units"}, 1, "URL scheme undefined"},
		{map[string]string{"FLEETCTL_REQUEST_TIMEOUT": "soon"}, []string{"list-units"}, 1, `invalid value "soon" of FLEETCTL_REQUEST_TIMEOUT`},
		{map[string]string{"FLEETCTL_STRICT_HOST_KEY_CHECKING": "maybe"}, []string{"version"}, 1, "FLEETCTL_STRICT_HOST_KEY_CHECKING"},
		{map[string]string{"FLEETCTL_TUNNEL": "host"}, []string{"list-units"}, 1, "--tunnel host: SSH_AUTH_SOCK"},
		{map[string]string{"FLEETCTL_SSH_USERNAME": "me", "FLEETCTL_DEBUG": "true"}, []string{"version"}, 0, "fleetctl version"},
		{map[string]string{"FLEETCTL_DEBUG": "true"}, []string{"--endpoint=unix:///nonexistent.sock", "list-units"}, 1, "DEBUG: driver API, endpoint unix:///nonexistent.sock"},
		{nil, []string{"--debug", "--endpoint=unix:///nonexistent.sock", "list-units"}, 1, "DEBUG: driver API"},
	}
	for _, c := range cases {
		r := fleetctl(t, c.env, "", c.args...)
		if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.want) {
			t.Errorf("%v %v: exit %d, output %q; want exit %d and %q", c.env, c.args, r.code, r.stdout+r.stderr, c.code, c.want)
		}
	}
}

// TestHelp: bare fleetctl, help and --help print usage and exit 0; help
// lists every command; completion scripts are generated.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"--help"}, {"-h"}} {
		r := fleetctl(t, nil, "", args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		for _, cmd := range []string{"submit", "load", "start", "stop", "unload", "destroy", "restart", "cat",
			"list-units", "list-unit-files", "list-machines", "status", "journal", "ssh", "version", "completion"} {
			if !strings.Contains(r.stdout, "  "+cmd+" ") {
				t.Errorf("%v: help does not list %s:\n%s", args, cmd, r.stdout)
			}
		}
	}
	r := fleetctl(t, nil, "", "help", "list-units")
	if r.code != 0 || !strings.Contains(r.stdout, "-l, --full") || !strings.Contains(r.stdout, "--endpoint") {
		t.Errorf("help list-units: exit %d:\n%s", r.code, r.stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := fleetctl(t, nil, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "fleetctl") {
			t.Errorf("completion %s: exit %d: %s", shell, r.code, r.stderr)
		}
	}
}

// TestDeprecatedSigning: verify and --sign fail with exit 2, as fleet meant.
func TestDeprecatedSigning(t *testing.T) {
	for _, args := range [][]string{{"verify", "x.service"}, {"submit", "--sign", "x.service"}, {"start", "--sign", "x.service"}} {
		r := fleetctl(t, nil, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "DEPRECATED") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and DEPRECATED", args, r.code, r.stderr)
		}
	}
}

// TestFdForward: fd-forward carries stdin to a unix socket and its answer to
// stdout.
func TestFdForward(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		data, _ := io.ReadAll(c)
		c.Write([]byte(strings.ToUpper(string(data))))
	}()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader("ping over the socket"), &out, &errb, func(string) string { return "" })
	if code := a.run(t.Context(), []string{"fd-forward", sock}); code != 0 || out.String() != "PING OVER THE SOCKET" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	r := fleetctl(t, nil, "", "fd-forward", filepath.Join(t.TempDir(), "none.sock"))
	if r.code != 1 || !strings.Contains(r.stderr, "unable to connect") {
		t.Fatalf("missing socket: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestProgress: on a terminal a wait shows how many units arrived and which
// it still waits for; a timeout names each unit that never arrived and the
// state it is in.
func TestProgress(t *testing.T) {
	cl := startCluster(t)
	dir := t.TempDir()
	var args []string
	for _, name := range []string{"nowhere1.service", "nowhere2.service"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	r := fleetctlWith(t, cl.driverEnv("api"), "", func(a *app) { a.isTerminal = func() bool { return true } },
		append([]string{"start", "--block-attempts=1"}, args...)...)
	if r.code != 1 {
		t.Fatalf("exit %d; stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"\r\033[K0 of 2 units launched; waiting for nowhere1.service nowhere2.service",
		"timed out waiting for unit nowhere1.service to report state launched (it is inactive)\n",
		"timed out waiting for unit nowhere2.service to report state launched (it is inactive)\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
}

// TestWaitStopsWithContext: a wait without --block-attempts (forever) ends
// when the context does (Ctrl-C), with exit 1.
func TestWaitStopsWithContext(t *testing.T) {
	cl := startCluster(t)
	p := filepath.Join(t.TempDir(), "nowhere.service")
	if err := os.WriteFile(p, []byte("[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := cl.driverEnv("api")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c, err := fleetclient.NewAPI(api.ClientConfig{Endpoint: env["FLEETCTL_ENDPOINT"], Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		// Cancel once the unit is desired launched: start is then waiting.
		defer cancel()
		for ctx.Err() == nil {
			if u, err := c.Unit(ctx, "nowhere.service"); err == nil && u.DesiredState == "launched" {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	a.pollInterval = 10 * time.Millisecond
	if code := a.run(ctx, []string{"start", p}); code != 1 || !strings.Contains(errb.String(), "context canceled") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
