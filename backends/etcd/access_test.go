package etcd_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/backends/etcd/etcdtest"
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/backends/registrytest"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/testpki"
)

// secureDialTimeout is long on purpose: a refused TLS setup must be reported
// by the probe at once, so a test that waited for this timeout would show as
// a "deadline exceeded" error, which the tests reject.
const secureDialTimeout = time.Minute

// TestSecureConformance runs the shared Registry suite as the fleet user (by
// password) over TLS with a client certificate, against an etcd that checks
// both: every key the registry uses lies under its prefix, and leases need no
// other permission.
func TestSecureConformance(t *testing.T) {
	s := etcdtest.StartSecure(t, "/secure/")
	cli, err := etcd.Dial(t.Context(), s.ClientConfig(etcdtest.FleetUser, etcdtest.FleetPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var n atomic.Int64
	registrytest.Run(t, func(t *testing.T) registrytest.Instance {
		clock := memory.NewManualClock(time.Unix(1_000_000, 0))
		reg, err := etcd.New(cli, etcd.WithPrefix(fmt.Sprintf("/secure/%d/", n.Add(1))), etcd.WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.CheckAccess(t.Context()); err != nil {
			t.Fatal(err)
		}
		return registrytest.Instance{Registry: reg, Advance: func(d time.Duration) {
			clock.Advance(d)
			if err := reg.Expire(t.Context()); err != nil {
				t.Fatalf("Expire after advancing %v: %v", d, err)
			}
		}}
	})
}

// TestSecureCertificateUser: without a user name and password, etcd takes the
// user from the client certificate's common name; a certificate named "fleet"
// gets the fleet user's access, one naming no user gets none.
func TestSecureCertificateUser(t *testing.T) {
	s := etcdtest.StartSecure(t, etcd.DefaultPrefix)
	named, err := s.CA.Issue("cn-fleet", testpki.Options{CommonName: etcdtest.FleetUser})
	if err != nil {
		t.Fatal(err)
	}
	cc := s.ClientConfig("", "")
	cc.CertFile, cc.KeyFile = named.CertFile, named.KeyFile
	reg := openRegistry(t, cc)
	if err := reg.CheckAccess(t.Context()); err != nil {
		t.Fatalf("CheckAccess as the certificate's user %q: %v", etcdtest.FleetUser, err)
	}
	u, contents := unit("a.service")
	if err := reg.CreateUnit(t.Context(), u, contents); err != nil {
		t.Fatalf("CreateUnit as the certificate's user: %v", err)
	}
}

// TestSecureRefusals: each wrong TLS file or credential fails at Dial, or for
// a user without the role at the first call, with an error naming what is
// wrong, and nothing is written.
func TestSecureRefusals(t *testing.T) {
	s := etcdtest.StartSecure(t, etcd.DefaultPrefix)
	otherCA, foreign := s.Foreign(t)
	expired := s.Expired(t)
	fleet := func(f func(*etcd.ClientConfig)) etcd.ClientConfig {
		cc := s.ClientConfig(etcdtest.FleetUser, etcdtest.FleetPassword)
		cc.DialTimeout = secureDialTimeout
		f(&cc)
		return cc
	}
	atDial := []struct {
		name string
		cc   etcd.ClientConfig
		want []string
	}{
		{"wrong CA", fleet(func(c *etcd.ClientConfig) { c.CAFile = otherCA }),
			[]string{"server's certificate is not trusted by CA file " + otherCA, "certificate signed by unknown authority"}},
		{"no CA file", fleet(func(c *etcd.ClientConfig) { c.CAFile = "" }),
			[]string{"not trusted by the system's CAs"}},
		{"expired client certificate", fleet(func(c *etcd.ClientConfig) { c.CertFile, c.KeyFile = expired.CertFile, expired.KeyFile }),
			[]string{"client certificate " + expired.CertFile + " expired at"}},
		{"client certificate from another CA", fleet(func(c *etcd.ClientConfig) { c.CertFile, c.KeyFile = foreign.CertFile, foreign.KeyFile }),
			[]string{"refused client certificate " + foreign.CertFile, "unknown certificate authority"}},
		{"no client certificate", fleet(func(c *etcd.ClientConfig) { c.CertFile, c.KeyFile = "", "" }),
			[]string{"none is set", "certificate required"}},
		{"wrong password", fleet(func(c *etcd.ClientConfig) { c.Password = "guess" }),
			[]string{`user "fleet"`, "wrong user name or password"}},
		{"unknown user", fleet(func(c *etcd.ClientConfig) { c.Username = "ghost" }),
			[]string{`user "ghost"`, "wrong user name or password"}},
		{"user without password", fleet(func(c *etcd.ClientConfig) { c.Password = "" }),
			[]string{`user "fleet" has no password`}},
	}
	for _, tc := range atDial {
		t.Run(tc.name, func(t *testing.T) {
			cli, err := etcd.Dial(t.Context(), tc.cc)
			if err == nil {
				cli.Close()
				t.Fatal("Dial: no error")
			}
			wantError(t, err, tc.want...)
		})
	}
	atFirstCall := []struct {
		name string
		cc   etcd.ClientConfig
		want []string
	}{
		{"user without permission on the prefix", fleet(func(c *etcd.ClientConfig) {
			c.Username, c.Password = etcdtest.StrangerUser, etcdtest.StrangerPassword
		}), []string{`etcd user "stranger" may not read or write keys under ` + etcd.DefaultPrefix, "permission denied"}},
		{"read-only user", fleet(func(c *etcd.ClientConfig) {
			c.Username, c.Password = etcdtest.ReaderUser, etcdtest.ReaderPassword
		}), []string{`etcd user "reader" may not read or write keys under ` + etcd.DefaultPrefix, "permission denied"}},
		{"certificate naming no user", fleet(func(c *etcd.ClientConfig) { c.Username, c.Password = "", "" }),
			[]string{"client certificate's common name", "permission denied"}},
	}
	for _, tc := range atFirstCall {
		t.Run(tc.name, func(t *testing.T) {
			reg := openRegistry(t, tc.cc)
			wantError(t, reg.CheckAccess(t.Context()), tc.want...)
			u, contents := unit("a.service")
			wantError(t, reg.CreateUnit(t.Context(), u, contents), tc.want...)
		})
	}
	keys, err := s.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("keys written despite the refusals: %q", keys)
	}
}

// TestSecureStrangerKeepsOwnPrefix: the registry's refusal for the stranger is
// etcd's, not a client-side guess: the same user writes its own prefix.
func TestSecureStrangerKeepsOwnPrefix(t *testing.T) {
	s := etcdtest.StartSecure(t, etcd.DefaultPrefix)
	cc := s.ClientConfig(etcdtest.StrangerUser, etcdtest.StrangerPassword)
	cli, err := etcd.Dial(t.Context(), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	reg, err := etcd.New(cli, etcd.WithPrefix(etcdtest.OtherPrefix))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.CheckAccess(t.Context()); err != nil {
		t.Fatalf("CheckAccess on the stranger's own prefix: %v", err)
	}
	resp, err := s.Root.Get(t.Context(), etcdtest.OtherPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("CheckAccess wrote %d keys", resp.Count)
	}
}

// openRegistry dials cc and returns a registry on the default prefix, closed
// with the test.
func openRegistry(t *testing.T, cc etcd.ClientConfig) *etcd.Registry {
	t.Helper()
	cli, err := etcd.Dial(t.Context(), cc)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	reg, err := etcd.New(cli, etcd.WithRetry(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// wantError fails unless err is set, is not a timeout, and contains every
// string in want.
func wantError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Fatalf("error %q is a timeout, want the cause at once", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func unit(name string) (core.Unit, []byte) {
	contents := []byte("[Service]\nExecStart=/bin/true\n")
	return core.Unit{Name: name, Hash: core.HashBytes(contents), TargetState: core.Inactive}, contents
}
