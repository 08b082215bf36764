package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/backends/etcd/etcdtest"
	"github.com/fleet-rebuild/fleet/daemon"
	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/internal/testpki"
)

// TestSecureEtcdDriver: fleetctl --driver=etcd reaches an etcd with TLS,
// client-certificate checking and authentication with the TLS flags,
// --etcd-username and the password from FLEETCTL_ETCD_PASSWORD or
// --etcd-password-file; each wrong file or credential is one clear error and
// exit status 1, at once rather than after the request timeout, and a refused
// write writes nothing.
func TestSecureEtcdDriver(t *testing.T) {
	s := etcdtest.StartSecure(t, etcd.DefaultPrefix)
	machine := startSecureFleetd(t, s)
	dir := t.TempDir()
	otherCA, foreign := s.Foreign(t)
	expired := s.Expired(t)
	passwordFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passwordFile, []byte(etcdtest.FleetPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unitFile := filepath.Join(dir, "hello.service")
	if err := os.WriteFile(unitFile, []byte("[Service]\nExecStart=/bin/sleep infinity\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(password string) map[string]string {
		e := map[string]string{
			"FLEETCTL_DRIVER": "etcd", "FLEETCTL_ENDPOINT": s.Srv.Endpoints()[0],
			"FLEETCTL_REQUEST_TIMEOUT": "60",
		}
		if password != "" {
			e["FLEETCTL_ETCD_PASSWORD"] = password
		}
		return e
	}
	tlsFlags := func(ca string, client testpki.Pair) []string {
		return []string{"--ca-file=" + ca, "--cert-file=" + client.CertFile, "--key-file=" + client.KeyFile}
	}
	good := tlsFlags(s.CA.CertFile, s.Client)
	cmd := func(flags []string, user string, args ...string) []string {
		return append(append(flags, "--etcd-username="+user), args...)
	}

	for name, r := range map[string]result{
		"password from the environment": fleetctl(t, env(etcdtest.FleetPassword), "", cmd(good, etcdtest.FleetUser, "list-machines", "--full")...),
		"password from a file":          fleetctl(t, env(""), "", cmd(good, etcdtest.FleetUser, "--etcd-password-file="+passwordFile, "list-machines", "--full")...),
		"read-only user":                fleetctl(t, env(etcdtest.ReaderPassword), "", cmd(good, etcdtest.ReaderUser, "list-machines", "--full")...),
	} {
		if r.code != 0 || !strings.Contains(r.stdout, machine) {
			t.Errorf("%s: list-machines exit %d, stdout %q, stderr %q; want the machine %s", name, r.code, r.stdout, r.stderr, machine)
		}
	}

	for _, c := range []struct {
		name     string
		password string
		args     []string
		want     []string
	}{
		{"wrong CA", etcdtest.FleetPassword, cmd(tlsFlags(otherCA, s.Client), etcdtest.FleetUser, "list-machines"),
			[]string{"the server's certificate is not trusted by CA file " + otherCA}},
		{"expired client certificate", etcdtest.FleetPassword, cmd(tlsFlags(s.CA.CertFile, expired), etcdtest.FleetUser, "list-machines"),
			[]string{"client certificate " + expired.CertFile + " expired at"}},
		{"client certificate from another CA", etcdtest.FleetPassword, cmd(tlsFlags(s.CA.CertFile, foreign), etcdtest.FleetUser, "list-machines"),
			[]string{"the server refused client certificate " + foreign.CertFile}},
		{"no client certificate", etcdtest.FleetPassword, cmd([]string{"--ca-file=" + s.CA.CertFile}, etcdtest.FleetUser, "list-machines"),
			[]string{"none is set", "certificate required"}},
		{"wrong password", "guess", cmd(good, etcdtest.FleetUser, "list-machines"),
			[]string{`user "fleet"`, "wrong user name or password"}},
		{"unknown user", etcdtest.FleetPassword, cmd(good, "ghost", "list-unit-files"),
			[]string{`user "ghost"`, "wrong user name or password"}},
		{"no password", "", cmd(good, etcdtest.FleetUser, "list-machines"),
			[]string{"--etcd-username fleet needs a password", "FLEETCTL_ETCD_PASSWORD"}},
		{"user without permission", etcdtest.StrangerPassword, cmd(good, etcdtest.StrangerUser, "list-unit-files"),
			[]string{`etcd user "stranger" may not read or write keys under ` + etcd.DefaultPrefix}},
		{"read-only user writing", etcdtest.ReaderPassword, cmd(good, etcdtest.ReaderUser, "submit", unitFile),
			[]string{`etcd user "reader" may not read or write keys under ` + etcd.DefaultPrefix}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := fleetctl(t, env(c.password), "", c.args...)
			t.Logf("exit %d: %s", r.code, r.stderr)
			if r.code != 1 {
				t.Errorf("exit %d, want 1; stderr %q", r.code, r.stderr)
			}
			if strings.Contains(r.stderr, "deadline exceeded") {
				t.Errorf("stderr %q: a timeout, want the cause at once", r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not say %q", r.stderr, w)
				}
			}
		})
	}
	keys, err := s.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "hello.service") || strings.Contains(k, etcdtest.OtherPrefix) {
			t.Errorf("a refused fleetctl wrote %s", k)
		}
	}
}

// startSecureFleetd starts one fleetd (fake unit manager) on the secured etcd
// as the fleet user and returns its machine ID once it is listed.
func startSecureFleetd(t *testing.T, s *etcdtest.Secure) string {
	t.Helper()
	const id = "5ecc0de0000000000000000000000001"
	dir, err := os.MkdirTemp("", "fctl-") // short: socket paths stay under 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	idFile := filepath.Join(dir, "machine-id")
	if err := os.WriteFile(idFile, []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.EtcdServers = s.Srv.Endpoints()
	cfg.EtcdCAFile, cfg.EtcdCertFile, cfg.EtcdKeyFile = s.CA.CertFile, s.Client.CertFile, s.Client.KeyFile
	cfg.EtcdUsername, cfg.EtcdPassword = etcdtest.FleetUser, etcdtest.FleetPassword
	cfg.UnitManager = config.ManagerFake
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.MachineIDFile = idFile
	cfg.APISocket = filepath.Join(dir, "fleet.sock")
	cfg.PublicIP = "172.17.8.110"
	d, err := daemon.Start(context.Background(), daemon.Options{Config: cfg, Version: "test"})
	if err != nil {
		t.Fatalf("start fleetd on the secured etcd: %v", err)
	}
	t.Cleanup(func() { _ = d.StopMode(context.Background(), false) })
	cc := s.ClientConfig(etcdtest.FleetUser, etcdtest.FleetPassword)
	eventually(t, 20*time.Second, "the machine listed", func() bool {
		r := fleetctl(t, map[string]string{
			"FLEETCTL_DRIVER": "etcd", "FLEETCTL_ENDPOINT": cc.Endpoints[0], "FLEETCTL_ETCD_PASSWORD": cc.Password,
		}, "", "--ca-file="+cc.CAFile, "--cert-file="+cc.CertFile, "--key-file="+cc.KeyFile, "--etcd-username="+cc.Username, "list-machines", "--full")
		return r.code == 0 && strings.Contains(r.stdout, id)
	})
	return id
}

// TestEtcdCredentials: the password comes from one place, goes with a user
// name, and a password file is read without its final line break.
func TestEtcdCredentials(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withCRLF, empty := file("crlf", "s3cret\r\n"), file("empty", "\n")
	long := file("long", strings.Repeat("x", maxPasswordFile+1))
	for _, c := range []struct {
		name       string
		opts       etcdAuthOptions
		env        string
		user, pass string
		err        string
	}{
		{"none", etcdAuthOptions{}, "", "", "", ""},
		{"environment", etcdAuthOptions{username: "fleet"}, "s3cret", "fleet", "s3cret", ""},
		{"file", etcdAuthOptions{username: "fleet", passwordFile: withCRLF}, "", "fleet", "s3cret", ""},
		{"both", etcdAuthOptions{username: "fleet", passwordFile: withCRLF}, "s3cret", "", "", "--etcd-password-file and FLEETCTL_ETCD_PASSWORD are both set"},
		{"empty file", etcdAuthOptions{username: "fleet", passwordFile: empty}, "", "", "", empty + " is empty"},
		{"long file", etcdAuthOptions{username: "fleet", passwordFile: long}, "", "", "", "longer than 4096 bytes"},
		{"missing file", etcdAuthOptions{username: "fleet", passwordFile: filepath.Join(dir, "nope")}, "", "", "", "no such file"},
		{"password alone", etcdAuthOptions{}, "s3cret", "", "", "without --etcd-username"},
	} {
		user, pass, err := c.opts.credentials(func(k string) string {
			if k == etcdPasswordEnv {
				return c.env
			}
			return ""
		})
		switch {
		case c.err == "" && (err != nil || user != c.user || pass != c.pass):
			t.Errorf("%s: %q, %q, %v; want %q, %q", c.name, user, pass, err, c.user, c.pass)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%s: error %v shows the password", c.name, err)
		}
	}
}
