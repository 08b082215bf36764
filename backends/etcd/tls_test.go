package etcd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI holds the paths of a test CA, a server certificate for 127.0.0.1 and
// a client certificate.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fleet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	must(t, err)
	p := testPKI{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		must(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		must(t, err)
		cert, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, cert, "CERTIFICATE", der)
		writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
		return cert, keyFile
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

// TestTLS: a server that requires client certificates accepts a client with
// the CA, certificate and key, and refuses one without its certificate.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testServerConfig()
	cfg.TLS = &ServerTLS{CertFile: pki.serverCert, KeyFile: pki.serverKey, ClientCAFile: pki.ca}
	srv := startServer(t, cfg)
	ctx := t.Context()

	cli := dial(t, ClientConfig{Endpoints: srv.Endpoints(), CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey})
	reg, err := New(cli)
	must(t, err)
	u, c := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, u, c))

	for name, cc := range map[string]ClientConfig{
		"no client certificate": {Endpoints: srv.Endpoints(), CAFile: pki.ca},
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
