package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"
)

func TestIssuedCertificatesVerify(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue("server", Options{CommonName: "fleetd", Server: true})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Issue("old", Options{CommonName: "old", Expired: true})
	if err != nil {
		t.Fatal(err)
	}
	pool := func(c *CA) *x509.CertPool {
		b, err := os.ReadFile(c.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(b) {
			t.Fatal("no certificate in", c.CertFile)
		}
		return p
	}
	leaf := func(p Pair) *x509.Certificate {
		kp, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(kp.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	srv := leaf(server)
	if _, err := srv.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("server certificate does not verify against its CA: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := srv.Verify(x509.VerifyOptions{Roots: pool(other), DNSName: "127.0.0.1"}); !errors.As(err, &unknown) {
		t.Errorf("server certificate against another CA: err = %v, want unknown authority", err)
	}
	var invalid x509.CertificateInvalidError
	_, err = leaf(expired).Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Errorf("expired certificate: err = %v, want expired", err)
	}
	if fi, err := os.Stat(server.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v, want 0600", fi.Mode(), err)
	}
}
