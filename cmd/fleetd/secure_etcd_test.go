package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/backends/etcd/etcdtest"
	"github.com/fleet-rebuild/fleet/internal/testpki"
)

// TestSecureEtcd runs fleetd against an etcd with TLS, client-certificate
// checking and authentication: each wrong file or credential stops fleetd at
// start with exit status 1 and a message naming it, before anything is
// written; the right ones (the password from the environment) make a working
// machine.
func TestSecureEtcd(t *testing.T) {
	s := etcdtest.StartSecure(t, etcd.DefaultPrefix)
	otherCA, foreign := s.Foreign(t)
	args := func(ca string, client testpki.Pair, user string) []string {
		return []string{
			"-etcd_servers", s.Srv.Endpoints()[0], "-unit_manager", "fake",
			"-etcd_cafile", ca, "-etcd_certfile", client.CertFile, "-etcd_keyfile", client.KeyFile,
			"-etcd_username", user,
		}
	}
	password := func(p string) []string { return []string{"FLEET_ETCD_PASSWORD=" + p} }
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"wrong CA", password(etcdtest.FleetPassword), args(otherCA, s.Client, etcdtest.FleetUser),
			[]string{"not trusted by CA file " + otherCA}},
		{"client certificate from another CA", password(etcdtest.FleetPassword), args(s.CA.CertFile, foreign, etcdtest.FleetUser),
			[]string{"refused client certificate " + foreign.CertFile}},
		{"wrong password", password("guess"), args(s.CA.CertFile, s.Client, etcdtest.FleetUser),
			[]string{`user \"fleet\"`, "wrong user name or password"}},
		{"no password", nil, args(s.CA.CertFile, s.Client, etcdtest.FleetUser),
			[]string{"etcd_username = fleet", "needs etcd_password"}},
		{"user without permission", password(etcdtest.StrangerPassword), args(s.CA.CertFile, s.Client, etcdtest.StrangerUser),
			[]string{`etcd user \"stranger\" may not read or write keys under /_coreos.com/fleet/`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := newMachineDir(t, "m1")
			p := startProc(t, dir, c.env, append(baseArgs(dir), c.args...)...)
			code := p.wait(30 * time.Second)
			t.Logf("exit %d: %s", code, p.log.String())
			out := p.log.String()
			if code != 1 {
				t.Errorf("exit %d, want 1; output %q", code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q does not say %q", out, w)
				}
			}
			if strings.Contains(out, etcdtest.FleetPassword) || strings.Contains(out, etcdtest.StrangerPassword) {
				t.Errorf("output shows a password: %q", out)
			}
		})
	}
	keys, err := s.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("refused fleetds wrote %q", keys)
	}

	p := startFleetd(t, newMachineDir(t, "m1"), password(etcdtest.FleetPassword), args(s.CA.CertFile, s.Client, etcdtest.FleetUser)...)
	eventually(t, 10*time.Second, "the machine listed", func() bool {
		ms, err := p.client.Machines(context.Background())
		return err == nil && len(ms) == 1 && ms[0].ID == "m1"
	})
	launch(t, p.client, "a.service", unitOptions("Service", "ExecStart=/bin/sleep infinity"))
	eventually(t, 10*time.Second, "a.service launched", func() bool { return unit(p.client, "a.service").CurrentState == "launched" })
}
