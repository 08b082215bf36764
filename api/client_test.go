package api

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestClientEndpoints: fleet's endpoint rules and messages.
func TestClientEndpoints(t *testing.T) {
	for _, c := range []struct{ endpoint, err string }{
		{"unix:///var/run/fleet.sock", ""},
		{"file:///var/run/fleet.sock", ""},
		{"http://127.0.0.1:49153", ""},
		{"https://fleet.example:443/mount", ""},
		{"http://127.0.0.1:1,http://127.0.0.1:2", ""},
		{"unix://var/run/fleet.sock", `unable to connect to host "var" with scheme "unix"`},
		{"file://run/fleet.sock", `unable to connect to host "run" with scheme "file"`},
		{"localhost", "URL scheme undefined"},
		{"/var/run/fleet.sock", "URL scheme undefined"},
		{"unix://", `endpoint "unix://" names no socket path`},
		{"http://", `endpoint "http://" names no host`},
		{"ftp://host", `endpoint "ftp://host": unsupported scheme "ftp" (want unix, file, http or https)`},
		{"127.0.0.1:4001", `parse "127.0.0.1:4001": first path segment in URL cannot contain colon`},
	} {
		_, err := NewClient(ClientConfig{Endpoint: c.endpoint})
		if got := fmt.Sprint(err); (c.err == "" && err != nil) || (c.err != "" && got != c.err) {
			t.Errorf("NewClient(%q): error %v, want %q", c.endpoint, err, c.err)
		}
	}
	if _, err := NewClient(ClientConfig{Endpoint: "unix:///x", Timeout: -time.Second}); err == nil {
		t.Error("NewClient accepted a negative timeout")
	}
}

// serveUnix serves h on a unix socket in a temporary directory until the test
// ends, and returns its endpoint.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fleet.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing the unix server: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("unix server: %v", err)
		}
	})
	return "unix://" + sock
}

// TestClientTransports runs every client method against the handler over a
// unix socket, TCP, TLS and TCP under a mount path, on embedded etcd.
func TestClientTransports(t *testing.T) {
	for _, transport := range []string{"unix", "tcp", "tls", "mounted"} {
		t.Run(transport, func(t *testing.T) {
			f := newFixture(t, "etcd", func(c *Config) { c.TokenLimit = 2 })
			cfg := ClientConfig{Timeout: 10 * time.Second}
			switch transport {
			case "unix":
				cfg.Endpoint = serveUnix(t, f.h)
			case "tcp":
				srv := httptest.NewServer(f.h)
				t.Cleanup(srv.Close)
				cfg.Endpoint = srv.URL
			case "tls":
				srv := httptest.NewTLSServer(f.h)
				t.Cleanup(srv.Close)
				pool := x509.NewCertPool()
				pool.AddCert(srv.Certificate())
				cfg.Endpoint, cfg.TLS = srv.URL, &tls.Config{RootCAs: pool}
			case "mounted":
				srv := httptest.NewServer(http.StripPrefix("/mount", f.h))
				t.Cleanup(srv.Close)
				cfg.Endpoint = srv.URL + "/mount/"
			}
			c, err := NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			exerciseClient(t, f, c)
		})
	}
}

// exerciseClient calls every method of c on the fixture behind it.
func exerciseClient(t *testing.T, f *fixture, c *Client) {
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	units, err := c.Units(ctx)
	must("Units", err)
	if got := names(units, func(u Unit) string { return u.Name + "/" + u.CurrentState + "/" + u.MachineID }); got !=
		"global.service// idle.service/inactive/ loaded.service/loaded/m2 moved.service/launched/m2 placed.service/launched/m1 tmpl@.service/inactive/" {
		t.Fatalf("Units: %s", got)
	}
	odd := `odd\x2dname@i.service` // a backslash and an '@' in the path
	must("CreateUnit", c.CreateUnit(ctx, Unit{Name: odd, Options: []UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}}}))
	u, err := c.Unit(ctx, odd)
	must("Unit", err)
	want := Unit{Name: odd, Options: []UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}}, DesiredState: "inactive", CurrentState: "inactive"}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("Unit: %+v, want %+v", u, want)
	}
	must("SetUnitTargetState", c.SetUnitTargetState(ctx, odd, "launched"))
	must("ReplaceUnit", c.ReplaceUnit(ctx, Unit{Name: odd, Options: []UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/false"}}}))
	if u, err = c.Unit(ctx, odd); err != nil || u.DesiredState != "inactive" || u.Options[0].Value != "/bin/false" {
		t.Fatalf("Unit after replace: %+v, %v", u, err)
	}

	states, err := c.UnitStates(ctx, StateFilter{})
	must("UnitStates", err)
	stateName := func(s UnitState) string { return s.Name + "@" + s.MachineID }
	if got := names(states, stateName); got != "global.service@m1 global.service@m2 loaded.service@m2 moved.service@m1 moved.service@m2 placed.service@m1" {
		t.Fatalf("UnitStates: %s", got)
	}
	states, err = c.UnitStates(ctx, StateFilter{MachineID: "m2", UnitName: "moved.service"})
	must("UnitStates filtered", err)
	if got := names(states, stateName); got != "moved.service@m2" {
		t.Fatalf("UnitStates filtered: %s", got)
	}
	s, err := c.UnitState(ctx, "moved.service")
	must("UnitState", err)
	if s.MachineID != "m2" || s.Hash != string(f.hashes["moved.service"]) || s.SystemdActiveState != "active" {
		t.Fatalf("UnitState: %+v", s)
	}

	must("PatchMachineMetadata", c.PatchMachineMetadata(ctx, []MetadataChange{
		{Op: OpAdd, Machine: "m1", Key: "rack", Value: "r7"}, {Op: OpRemove, Machine: "m1", Key: "disk"},
	}))
	machines, err := c.Machines(ctx)
	must("Machines", err)
	wantMachines := []Machine{
		{ID: "m1", PrimaryIP: "10.0.0.1", Metadata: map[string]string{"region": "us", "rack": "r7"}},
		{ID: "m2", PrimaryIP: "10.0.0.2", Metadata: map[string]string{"region": "eu"}},
	}
	if !reflect.DeepEqual(machines, wantMachines) {
		t.Fatalf("Machines: %+v, want %+v", machines, wantMachines)
	}
	doc, err := c.Discovery(ctx)
	must("Discovery", err)
	if !strings.Contains(string(doc), `"rootUrl": "$ENDPOINT/"`) {
		t.Fatalf("Discovery: %.200s", doc)
	}

	must("DestroyUnit", c.DestroyUnit(ctx, odd))
	wantAPIError(t, "DestroyUnit again", c.DestroyUnit(ctx, odd), 404, "unit does not exist", ErrNotFound)
	_, err = c.Unit(ctx, odd)
	wantAPIError(t, "Unit after destroy", err, 404, "unit does not exist", ErrNotFound)
	_, err = c.UnitState(ctx, "idle.service")
	wantAPIError(t, "UnitState unpublished", err, 404, "unit state does not exist", ErrNotFound)
	wantAPIError(t, "SetUnitTargetState missing", c.SetUnitTargetState(ctx, "missing.service", "launched"),
		409, "unit does not exist and options field empty", nil)
	wantAPIError(t, "SetUnitTargetState bogus", c.SetUnitTargetState(ctx, "idle.service", "up"),
		400, `invalid desiredState "up": want inactive, loaded or launched`, nil)
}

// names joins the names of items.
func names[T any](items []T, name func(T) string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return strings.Join(out, " ")
}

// wantAPIError checks that err is an *Error with code and msg, matching
// sentinel if not nil and ErrNotFound only for a 404.
func wantAPIError(t *testing.T, what string, err error, code int, msg string, sentinel error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code || e.Message != msg {
		t.Fatalf("%s: error %v, want *Error %d %q", what, err, code, msg)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("%s: %v does not match %v", what, err, sentinel)
	}
	if code != 404 && errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: a %d matches ErrNotFound", what, code)
	}
}

// TestClientErrors: answers outside 2xx become *Error, also when the body is
// not fleet's error entity; 503 matches ErrUnavailable; a TLS endpoint not
// trusted fails; a dead socket fails with the dial error.
func TestClientErrors(t *testing.T) {
	f := newFixture(t, "memory", func(c *Config) { c.Available = func() error { return errors.New("down") } })
	c, err := NewClient(ClientConfig{Endpoint: serveUnix(t, f.h)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Units(t.Context())
	wantAPIError(t, "Units while unavailable", err, 503, "fleet server unable to communicate with etcd", ErrUnavailable)

	for _, s := range []struct {
		code       int
		body, want string
	}{
		{502, "bad gateway from a proxy\n", "bad gateway from a proxy"},
		{500, `{"error":{"code":500,"message":""}}`, "Internal Server Error"},
		{404, "", "Not Found"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(s.code)
			fmt.Fprint(w, s.body)
		}))
		c, err := NewClient(ClientConfig{Endpoint: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Machines(t.Context())
		wantAPIError(t, fmt.Sprintf("answer %d %q", s.code, s.body), err, s.code, s.want, nil)
		srv.Close()
	}

	tlsSrv := httptest.NewTLSServer(f.h)
	defer tlsSrv.Close()
	c, err = NewClient(ClientConfig{Endpoint: tlsSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var certErr *tls.CertificateVerificationError
	if _, err := c.Machines(t.Context()); !errors.As(err, &certErr) {
		t.Fatalf("untrusted TLS server: %v, want a certificate verification error", err)
	}

	c, err = NewClient(ClientConfig{Endpoint: "unix://" + filepath.Join(t.TempDir(), "none.sock")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Machines(t.Context()); err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Fatalf("dead socket: %v", err)
	}
}

// TestClientTimeout: a server that never answers fails the request after the
// configured timeout, on a unix socket as on TCP.
func TestClientTimeout(t *testing.T) {
	hang := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	tcp := httptest.NewServer(hang)
	defer tcp.Close()
	for _, endpoint := range []string{serveUnix(t, hang), tcp.URL} {
		const timeout = 200 * time.Millisecond
		c, err := NewClient(ClientConfig{Endpoint: endpoint, Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.Unit(t.Context(), "a.service")
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s: error %v, want a timeout", endpoint, err)
		}
		if d := time.Since(start); d < timeout {
			t.Fatalf("%s: gave up after %v, before the timeout %v", endpoint, d, timeout)
		}
		c.Close()
	}
}

// TestClientPageLoop: a server that hands out the same page token again does
// not keep a listing looping.
func TestClientPageLoop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"units":[{"name":"a.service"}],"nextPageToken":"ZAACAA=="}`)
	}))
	defer srv.Close()
	c, err := NewClient(ClientConfig{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Units(t.Context())
	if err == nil || !strings.Contains(err.Error(), `repeated page token "ZAACAA=="`) {
		t.Fatalf("Units from a looping server: %v", err)
	}
}
