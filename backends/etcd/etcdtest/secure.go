// Package etcdtest starts real etcd servers for tests of fleet's etcd access:
// an embedded etcd that serves clients over TLS only, requires a client
// certificate signed by its CA, and has etcd's authentication enabled with
// users whose roles cover fleet's key prefix, part of it, or none of it.
//
//	s := etcdtest.StartSecure(t, etcd.DefaultPrefix)
//	cli, err := etcd.Dial(ctx, s.ClientConfig(etcdtest.FleetUser, etcdtest.FleetPassword))
package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/internal/testpki"
)

// The users of a Secure server and their passwords. FleetUser may read and
// write fleet's prefix, ReaderUser only read it, StrangerUser only read and
// write OtherPrefix; RootUser may do everything.
const (
	RootUser         = "root"
	RootPassword     = "root-secret"
	FleetUser        = "fleet"
	FleetPassword    = "fleet-secret"
	ReaderUser       = "reader"
	ReaderPassword   = "reader-secret"
	StrangerUser     = "stranger"
	StrangerPassword = "stranger-secret"
	// OtherPrefix is the only prefix StrangerUser may use.
	OtherPrefix = "/other/"
)

// Secure is a running etcd with client TLS, client-certificate checking and
// authentication enabled.
type Secure struct {
	// Srv is the server; its Endpoints are https URLs on 127.0.0.1.
	Srv *etcd.Embedded
	// CA signed the server's certificate and every client certificate the
	// server accepts; Client is a certificate from it whose common name is no
	// etcd user.
	CA     *testpki.CA
	Client testpki.Pair
	// Prefix is fleet's key prefix, on which the users' roles are granted.
	Prefix string
	// Root is a client authenticated as RootUser, to look at what was written.
	Root *clientv3.Client
}

// StartSecure starts the server and sets up its users and roles for prefix;
// the test's cleanup stops it. Every certificate lives in a TempDir.
func StartSecure(t testing.TB, prefix string) *Secure {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	ca, err := testpki.NewCA(dir, "etcd")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue("server", testpki.Options{CommonName: "etcd", Server: true})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue("client", testpki.Options{CommonName: "client-no-user"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{
		TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true, Logger: zap.NewNop(),
		TLS: &etcd.ServerTLS{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.CertFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s := &Secure{Srv: srv, CA: ca, Client: client, Prefix: prefix}
	if err := s.setUpAuth(ctx); err != nil {
		t.Fatal(err)
	}
	s.Root, err = etcd.Dial(ctx, s.ClientConfig(RootUser, RootPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Root.Close() })
	return s
}

// ClientConfig is a configuration that reaches the server with the CA, the
// Client certificate and the given credentials (none if user is empty).
func (s *Secure) ClientConfig(user, password string) etcd.ClientConfig {
	return etcd.ClientConfig{
		Endpoints: s.Srv.Endpoints(),
		CAFile:    s.CA.CertFile, CertFile: s.Client.CertFile, KeyFile: s.Client.KeyFile,
		Username: user, Password: password,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	}
}

// Keys returns every key in the server, read as root.
func (s *Secure) Keys(ctx context.Context) ([]string, error) {
	resp, err := s.Root.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys, nil
}

// setUpAuth creates the users and roles and enables authentication, over a
// connection that authenticates by the Client certificate alone (accepted
// while auth is off).
func (s *Secure) setUpAuth(ctx context.Context) error {
	cli, err := etcd.Dial(ctx, s.ClientConfig("", ""))
	if err != nil {
		return err
	}
	defer cli.Close()
	end := clientv3.GetPrefixRangeEnd(s.Prefix)
	roles := []struct {
		user, password, role string
		key, end             string
		perm                 clientv3.PermissionType
	}{
		{FleetUser, FleetPassword, "fleet", s.Prefix, end, clientv3.PermissionType(clientv3.PermReadWrite)},
		{ReaderUser, ReaderPassword, "fleet-read", s.Prefix, end, clientv3.PermissionType(clientv3.PermRead)},
		{StrangerUser, StrangerPassword, "other", OtherPrefix, clientv3.GetPrefixRangeEnd(OtherPrefix), clientv3.PermissionType(clientv3.PermReadWrite)},
	}
	if _, err := cli.UserAdd(ctx, RootUser, RootPassword); err != nil {
		return err
	}
	if _, err := cli.UserGrantRole(ctx, RootUser, "root"); err != nil {
		return err
	}
	for _, r := range roles {
		if _, err := cli.RoleAdd(ctx, r.role); err != nil {
			return err
		}
		if _, err := cli.RoleGrantPermission(ctx, r.role, r.key, r.end, r.perm); err != nil {
			return err
		}
		if _, err := cli.UserAdd(ctx, r.user, r.password); err != nil {
			return err
		}
		if _, err := cli.UserGrantRole(ctx, r.user, r.role); err != nil {
			return err
		}
	}
	_, err = cli.AuthEnable(ctx)
	return err
}

// Foreign makes a CA the server does not trust and returns its certificate
// file and a client certificate for FleetUser issued by it.
func (s *Secure) Foreign(t testing.TB) (caFile string, client testpki.Pair) {
	t.Helper()
	other, err := testpki.NewCA(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	p, err := other.Issue("foreign", testpki.Options{CommonName: FleetUser})
	if err != nil {
		t.Fatal(err)
	}
	return other.CertFile, p
}

// Expired issues a client certificate for FleetUser from the server's CA whose
// validity has ended.
func (s *Secure) Expired(t testing.TB) testpki.Pair {
	t.Helper()
	p, err := s.CA.Issue("expired", testpki.Options{CommonName: FleetUser, Expired: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
