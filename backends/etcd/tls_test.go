package etcd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/testpki"
)

// TestTLS: a server that requires client certificates accepts a client with
// the CA, certificate and key, and refuses one without its certificate.
func TestTLS(t *testing.T) {
	ca, err := testpki.NewCA(t.TempDir(), "test")
	must(t, err)
	server, err := ca.Issue("server", testpki.Options{CommonName: "etcd", Server: true})
	must(t, err)
	client, err := ca.Issue("client", testpki.Options{CommonName: "client"})
	must(t, err)
	cfg := testServerConfig()
	cfg.TLS = &ServerTLS{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.CertFile}
	srv := startServer(t, cfg)
	ctx := t.Context()

	cli := dial(t, ClientConfig{Endpoints: srv.Endpoints(), CAFile: ca.CertFile, CertFile: client.CertFile, KeyFile: client.KeyFile})
	reg, err := New(cli)
	must(t, err)
	u, c := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, u, c))

	for name, cc := range map[string]ClientConfig{
		"no client certificate": {Endpoints: srv.Endpoints(), CAFile: ca.CertFile},
		"no TLS at all":         {Endpoints: srv.Endpoints()},
	} {
		cc.DialTimeout = 500 * time.Millisecond
		if cli, err := Dial(ctx, cc); err == nil {
			cli.Close()
			t.Errorf("Dial with %s: no error", name)
		}
	}
	if _, err := reg.UnitContents(ctx, u.Hash); err != nil {
		t.Fatalf("UnitContents over TLS: %v", err)
	}
}

// A CA file that holds no PEM certificate is refused when dialing, naming the
// file, not later as an endpoint that does not answer.
func TestDialRefusesCAFileWithoutCertificates(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	must(t, os.WriteFile(bad, []byte("not a certificate\n"), 0o600))
	_, err := Dial(t.Context(), ClientConfig{Endpoints: []string{"https://127.0.0.1:1"}, CAFile: bad, DialTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("Dial with a CA file without certificates: %v, want an error naming the file", err)
	}
}
