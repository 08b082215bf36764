package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/testpki"
)

func TestVersionAndArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-version"}, 0, "fleetd version "},
		{[]string{"--version"}, 0, "fleetd version "},
		{[]string{"version"}, 0, "fleetd version "},
		{[]string{"list-units"}, 1, "takes no arguments. Did you mean to invoke fleetctl instead?"},
		{[]string{"-no-such-flag"}, 1, "flag provided but not defined: -no-such-flag"},
	} {
		p := startProc(t, t.TempDir(), nil, c.args...)
		if code := p.wait(10 * time.Second); code != c.code || !strings.Contains(p.log.String(), c.want) {
			t.Errorf("fleetd %v: exit %d, output %q; want exit %d and %q", c.args, code, p.log.String(), c.code, c.want)
		}
	}
}

func TestBadConfigurationExits(t *testing.T) {
	dir := newMachineDir(t, "m1")
	conf := filepath.Join(dir, "fleet.conf")
	if err := os.WriteFile(conf, []byte("verbosity=1\nagent_ttl=soon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, dir, nil, append(baseArgs(dir), "-config", conf)...)
	code := p.wait(10 * time.Second)
	out := p.log.String()
	if code == 0 || !strings.Contains(out, "fleet.conf:2") || !strings.Contains(out, `agent_ttl = \"soon\"`) {
		t.Errorf("exit %d, output %q; want non-zero and the file, line, option and value", code, out)
	}
	p = startProc(t, dir, nil, append(baseArgs(dir), "-config", filepath.Join(dir, "missing.conf"))...)
	if code := p.wait(10 * time.Second); code == 0 || !strings.Contains(p.log.String(), "missing.conf") {
		t.Errorf("missing file: exit %d, output %q", code, p.log.String())
	}
	p = startProc(t, dir, []string{"FLEET_UNIT_MANAGER=docker"}, baseArgs(dir)...)
	if code := p.wait(10 * time.Second); code == 0 || !strings.Contains(p.log.String(), "unit_manager = docker") {
		t.Errorf("bad environment: exit %d, output %q", code, p.log.String())
	}
}

// TestAPITCPNeedsTLS: fleetd refuses api_tcp without TLS files, naming the
// options; with api_tls_no_client_auth it starts and says loudly, at every
// start, that anyone reaching the port is admin.
func TestAPITCPNeedsTLS(t *testing.T) {
	dir := newMachineDir(t, "m1")
	p := startProc(t, dir, nil, append(baseArgs(dir), "-api_tcp", "127.0.0.1:0")...)
	out := ""
	if code := p.wait(10 * time.Second); code != 0 {
		out = p.log.String()
	}
	for _, want := range []string{"api_tcp = 127.0.0.1:0", "api_tls_certfile", "api_tls_keyfile", "api_tls_client_cafile", "api_tls_no_client_auth"} {
		if !strings.Contains(out, want) {
			t.Errorf("fleetd with api_tcp and no TLS: output %q does not name %s", out, want)
		}
	}
	ca, err := testpki.NewCA(dir, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue("server", testpki.Options{CommonName: "fleetd", Server: true})
	if err != nil {
		t.Fatal(err)
	}
	p = startFleetd(t, dir, nil, "-unit_manager", "fake", "-embedded_etcd_client_url", freeURL(t), "-embedded_etcd_peer_url", freeURL(t),
		"-api_tcp", "127.0.0.1:0", "-api_tls_certfile", server.CertFile, "-api_tls_keyfile", server.KeyFile, "-api_tls_no_client_auth", "true")
	if out := p.log.String(); !strings.Contains(out, "INSECURE: api_tls_no_client_auth=true") {
		t.Errorf("no warning about api_tls_no_client_auth in:\n%s", out)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// A socket file left by a fleetd that died is replaced; a live one's is not.
func TestStaleSocketIsReplaced(t *testing.T) {
	dir := newMachineDir(t, "m1")
	sock := filepath.Join(dir, "fleet.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	p := startFleetd(t, dir, nil, "-unit_manager", "fake", "-embedded_etcd_client_url", freeURL(t), "-embedded_etcd_peer_url", freeURL(t))
	if _, err := p.client.Machines(context.Background()); err != nil {
		t.Fatalf("API on the replaced socket: %v", err)
	}
	// A second fleetd on another data directory but the same socket refuses
	// to take it.
	other := newMachineDir(t, "m2")
	q := startProc(t, other, nil,
		"-data_dir", filepath.Join(other, "data"), "-machine_id_file", filepath.Join(other, "machine-id"),
		"-api_socket", sock, "-unit_manager", "fake",
		"-embedded_etcd_client_url", freeURL(t), "-embedded_etcd_peer_url", freeURL(t))
	if code := q.wait(30 * time.Second); code == 0 || !strings.Contains(q.log.String(), "served by another process") {
		t.Errorf("second fleetd on a live socket: exit %d, output %q", code, q.log.String())
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after a clean stop: %v", err)
	}
}
