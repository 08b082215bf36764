package api

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"reflect"
	"testing"
)

// roleHeader carries the role of a test request to the fixture's Identify.
const roleHeader = "X-Test-Role"

// TestRoles: a read-only client may GET every resource but its writes are
// 403 naming the role, a client without a role gets 403 for everything, an
// admin may write; a refused request changes nothing stored.
func TestRoles(t *testing.T) {
	identify := func(r *http.Request) Identity {
		return Identity{Name: "CN=client", Role: Role(r.Header.Get(roleHeader))}
	}
	readOnly := `access denied: "CN=client" has role read-only, which may only read (GET), not `
	writes := []struct{ method, path, body string }{
		{"PUT", "/fleet/v1/units/new.service", optionsBody("/bin/true", `"desiredState":"launched"`)},
		{"PUT", "/fleet/v1/units/idle.service", `{"desiredState":"launched"}`},
		{"DELETE", "/fleet/v1/units/placed.service", ""},
		{"PATCH", "/fleet/v1/machines", `[{"op":"add","path":"/m1/metadata/a","value":"1"}]`},
		{"POST", "/v1-alpha/units", ""},
	}
	reads := []string{"/fleet/v1/units", "/fleet/v1/units/placed.service", "/v1-alpha/state", "/fleet/v1/state/placed.service", "/fleet/v1/machines", "/fleet/v1/discovery"}
	for _, backend := range backends {
		f := newFixture(t, backend, func(c *Config) { c.Identify = identify })
		as := func(role Role) http.Header {
			h := http.Header{"Content-Type": {"application/json"}}
			h.Set(roleHeader, string(role))
			return h
		}
		before := f.snapshot(t)
		for _, w := range writes {
			a := f.do(t, w.method, w.path, as(RoleRead), w.body)
			if a.code != http.StatusForbidden {
				t.Fatalf("%s: read-only %s %s: %d %s, want 403", backend, w.method, w.path, a.code, a.body)
			}
			sameJSON(t, a.body, errJSON(403, readOnly+w.method))
			a = f.do(t, w.method, w.path, as(RoleNone), w.body)
			if a.code != http.StatusForbidden {
				t.Fatalf("%s: no role %s %s: %d %s, want 403", backend, w.method, w.path, a.code, a.body)
			}
			sameJSON(t, a.body, errJSON(403, `access denied: "CN=client" has no role on this fleet API`))
		}
		for _, p := range reads {
			if a := f.do(t, "GET", p, as(RoleRead), ""); a.code != http.StatusOK {
				t.Errorf("%s: read-only GET %s: %d %s", backend, p, a.code, a.body)
			}
			if a := f.do(t, "GET", p, as(RoleNone), ""); a.code != http.StatusForbidden {
				t.Errorf("%s: no role GET %s: %d %s, want 403", backend, p, a.code, a.body)
			}
		}
		if after := f.snapshot(t); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s: refused requests changed the registry:\n before %+v\n after  %+v", backend, before, after)
		}
		for _, w := range writes[:4] {
			if a := f.do(t, w.method, w.path, as(RoleAdmin), w.body); a.code/100 != 2 {
				t.Errorf("%s: admin %s %s: %d %s", backend, w.method, w.path, a.code, a.body)
			}
		}
		if after := f.snapshot(t); reflect.DeepEqual(before, after) {
			t.Errorf("%s: the admin's writes changed nothing", backend)
		}
	}
}

func TestCertRoles(t *testing.T) {
	roles := CertRoles{AdminCNs: []string{"ops"}, AdminOrgs: []string{"fleet-admin"}, ReadCNs: []string{"prometheus"}, ReadOrgs: []string{"monitoring"}}
	for _, c := range []struct {
		cn   string
		orgs []string
		want Role
	}{
		{"ops", nil, RoleAdmin},
		{"alice", []string{"staff", "fleet-admin"}, RoleAdmin},
		{"prometheus", nil, RoleRead},
		{"grafana", []string{"monitoring"}, RoleRead},
		{"prometheus", []string{"fleet-admin"}, RoleAdmin},
		{"stranger", []string{"staff"}, RoleNone},
		{"Ops", nil, RoleNone},
		{"", []string{"fleet-admin "}, RoleNone},
	} {
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: c.cn, Organization: c.orgs}}
		if got := roles.Identify(cert); got.Role != c.want || got.Name != cert.Subject.String() {
			t.Errorf("CN=%q O=%q: %+v, want role %q named %q", c.cn, c.orgs, got, c.want, cert.Subject.String())
		}
	}
	if got := (CertRoles{}).Identify(&x509.Certificate{Subject: pkix.Name{CommonName: "ops"}}); got.Role != RoleNone {
		t.Errorf("no roles configured: %+v, want no role", got)
	}
}

func TestPeerRoles(t *testing.T) {
	if id := (PeerRoles{}).Identify(Peer{UID: 1000, GID: 1000}); id.Role != RoleAdmin || id.Name != "uid 1000 gid 1000" {
		t.Errorf("no lists: %+v, want admin (access by the socket's mode)", id)
	}
	roles := PeerRoles{AdminUIDs: []uint32{0}, AdminGIDs: []uint32{10}, ReadUIDs: []uint32{2000}, ReadGIDs: []uint32{20}}
	for _, c := range []struct {
		peer Peer
		want Role
	}{
		{Peer{UID: 0, GID: 0}, RoleAdmin},
		{Peer{UID: 1000, GID: 10}, RoleAdmin},
		{Peer{UID: 1000, GID: 1000, Groups: []uint32{5, 10}}, RoleAdmin},
		{Peer{UID: 2000, GID: 2000}, RoleRead},
		{Peer{UID: 1000, GID: 20}, RoleRead},
		{Peer{UID: 1000, GID: 1000, Groups: []uint32{20}}, RoleRead},
		{Peer{UID: 2000, GID: 2000, Groups: []uint32{10}}, RoleAdmin},
		{Peer{UID: 1000, GID: 1000, Groups: []uint32{5}}, RoleNone},
	} {
		if got := roles.Identify(c.peer); got.Role != c.want {
			t.Errorf("%+v: role %q, want %q", c.peer, got.Role, c.want)
		}
	}
}
