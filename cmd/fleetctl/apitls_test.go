package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/internal/testpki"
)

// apiPKI is a CA, the certificate fleetd serves its TCP API with, and client
// certificates: admin (CN=ops) and reader (O=monitoring).
type apiPKI struct {
	ca, server, admin, reader testpki.Pair
}

func newAPIPKI(t *testing.T) apiPKI {
	t.Helper()
	ca, err := testpki.NewCA(t.TempDir(), "fleet")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, o testpki.Options) testpki.Pair {
		p, err := ca.Issue(name, o)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return apiPKI{
		ca:     testpki.Pair{CertFile: ca.CertFile},
		server: issue("server", testpki.Options{CommonName: "fleetd", Server: true}),
		admin:  issue("admin", testpki.Options{CommonName: "ops"}),
		reader: issue("reader", testpki.Options{CommonName: "prometheus", Organization: []string{"monitoring"}}),
	}
}

// serveTLS makes cfg serve the API on a TCP port with TLS and client
// certificates, CN=ops admin and O=monitoring read-only.
func (p apiPKI) serveTLS(cfg *config.Config) {
	cfg.APITCP = "127.0.0.1:0"
	cfg.APITLSCertFile, cfg.APITLSKeyFile, cfg.APITLSClientCAFile = p.server.CertFile, p.server.KeyFile, p.ca.CertFile
	cfg.APITLSAdmin, cfg.APITLSRead = []string{"cn:ops"}, []string{"o:monitoring"}
}

// env is fleetctl's environment for the https endpoint with client pair.
func (p apiPKI) env(endpoint string, client testpki.Pair) map[string]string {
	return map[string]string{
		"FLEETCTL_REQUEST_TIMEOUT": "5", "FLEETCTL_ENDPOINT": endpoint, "FLEETCTL_CA_FILE": p.ca.CertFile,
		"FLEETCTL_CERT_FILE": client.CertFile, "FLEETCTL_KEY_FILE": client.KeyFile,
	}
}

// TestAPIOverTLS: fleetctl reaches an https API with --ca-file, --cert-file
// and --key-file; an admin certificate may start units, a read-only one may
// list them but its start is a clear 403 naming the role, and without a
// certificate the connection is refused.
func TestAPIOverTLS(t *testing.T) {
	pki := newAPIPKI(t)
	cl := startCluster(t, func(i int, cfg *config.Config) {
		if i == 0 {
			pki.serveTLS(cfg)
		}
	})
	addrs := cl.daemons[0].APIAddrs()
	endpoint := "https://" + addrs[len(addrs)-1].String()
	unit := filepath.Join(t.TempDir(), "hello.service")
	if err := os.WriteFile(unit, []byte("[Service]\nExecStart=/bin/sleep infinity\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	admin, reader := pki.env(endpoint, pki.admin), pki.env(endpoint, pki.reader)

	if r := fleetctl(t, admin, "", "start", "--no-block", unit); r.code != 0 {
		t.Fatalf("admin start: %+v", r)
	}
	if r := fleetctl(t, reader, "", "list-unit-files", "--no-legend"); r.code != 0 || !strings.Contains(r.stdout, "hello.service") {
		t.Fatalf("read-only list-unit-files: %+v", r)
	}
	r := fleetctl(t, reader, "", "destroy", "hello.service")
	if r.code == 0 || !strings.Contains(r.stderr, `403`) || !strings.Contains(r.stderr, `access denied: "CN=prometheus,O=monitoring" has role read-only`) {
		t.Fatalf("read-only destroy: %+v; want a 403 naming the identity and role", r)
	}
	if r := fleetctl(t, reader, "", "list-unit-files", "--no-legend", "--fields=unit,dstate"); r.code != 0 || r.stdout != "hello.service\tlaunched\n" {
		t.Errorf("after the refused destroy: %+v, want hello.service still launched", r)
	}
	overSocket := pki.env("unix://"+cl.sockets[0], pki.reader)
	if r := fleetctl(t, overSocket, "", "list-unit-files", "--no-legend"); r.code != 0 || !strings.Contains(r.stderr, "WARNING: --ca-file, --cert-file and --key-file apply to an https:// endpoint only") {
		t.Errorf("TLS files with a unix endpoint: %+v, want a warning", r)
	}
	anonymous := pki.env(endpoint, testpki.Pair{})
	if r := fleetctl(t, anonymous, "", "list-units"); r.code == 0 || !strings.Contains(r.stderr, "tls: certificate required") {
		t.Errorf("without a client certificate: %+v, want refused", r)
	}
}
