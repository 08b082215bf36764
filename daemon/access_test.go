package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/internal/testpki"
)

// peerEnv makes the test binary a socket client (see TestMain): the value
// is "socket method path body".
const peerEnv = "FLEETD_TEST_PEER"

func TestMain(m *testing.M) {
	if v := os.Getenv(peerEnv); v != "" {
		os.Exit(peerClient(v))
	}
	os.Exit(m.Run())
}

// peerClient sends one request over a unix socket and prints the answer's
// status code and body; a connection failure is printed as "dial: ...".
func peerClient(spec string) int {
	parts := strings.SplitN(spec, " ", 4)
	sock, method, path, body := parts[0], parts[1], parts[2], parts[3]
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://fleetd"+path, strings.NewReader(body))
	if err != nil {
		fmt.Println("request:", err)
		return 1
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Println("dial:", err)
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, data)
	return 0
}

// testAPI is the API served through the daemon's listeners and access
// rules, over an in-memory registry.
type testAPI struct {
	reg   *memory.Registry
	addrs []net.Addr
	logs  *bytes.Buffer
}

func startTestAPI(t *testing.T, cfg config.Config) *testAPI {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ta := &testAPI{reg: memory.New(memory.NewManualClock(time.Unix(1_000_000, 0))), logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(ta.logs, nil))
	acc, err := newAccess(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := openAPI(cfg, nil, acc)
	if err != nil {
		t.Fatal(err)
	}
	h := api.NewHandler(api.Config{Registry: ta.reg, Version: "test", Identify: acc.identify, Logger: log})
	for _, l := range s.listeners {
		srv := acc.server(h)
		s.servers = append(s.servers, srv)
		go func() { _ = srv.Serve(l) }()
		ta.addrs = append(ta.addrs, l.Addr())
		if _, ok := l.Addr().(*net.TCPAddr); ok {
			acc.warn(l.Addr())
		}
	}
	t.Cleanup(func() {
		if err := s.shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return ta
}

// units is the registry's units and their contents.
func (ta *testAPI) units(t *testing.T) map[string]string {
	t.Helper()
	us, err := ta.reg.Units(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, u := range us {
		data, err := ta.reg.UnitContents(t.Context(), u.Hash)
		if err != nil {
			t.Fatal(err)
		}
		out[u.Name] = string(u.TargetState) + "\n" + string(data)
	}
	return out
}

const unitBody = `{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`

// tlsClient is an https client trusting ca, presenting pair if given.
func tlsClient(t *testing.T, ca string, pair *testpki.Pair) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if pair != nil {
		cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
}

// call sends a request and returns the status code and body, or the error.
func call(hc *http.Client, method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), err
}

// newCA makes a test CA in dir.
func newCA(t *testing.T, dir, name string) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue makes a certificate signed by ca.
func issue(t *testing.T, ca *testpki.CA, name string, o testpki.Options) testpki.Pair {
	t.Helper()
	p, err := ca.Issue(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAPIOverTLS: over a real TCP listener, a client without a
// certificate, with one from another CA or an expired one is refused at the
// handshake; a read-only certificate may GET but its PUT and DELETE are 403
// and change nothing; a certificate without a role is 403 naming it; an admin
// may do everything; plain HTTP to the TLS port is refused.
func TestAPIOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "fleet")
	other := newCA(t, dir, "other")
	server := issue(t, ca, "server", testpki.Options{CommonName: "fleetd", Server: true})
	admin := issue(t, ca, "admin", testpki.Options{CommonName: "ops"})
	reader := issue(t, ca, "reader", testpki.Options{CommonName: "prometheus", Organization: []string{"monitoring"}})
	nobody := issue(t, ca, "nobody", testpki.Options{CommonName: "stranger"})
	expired := issue(t, ca, "expired", testpki.Options{CommonName: "ops", Expired: true})
	foreign := issue(t, other, "foreign", testpki.Options{CommonName: "ops"})

	cfg := config.Defaults()
	cfg.APISocket, cfg.APITCP = "", "127.0.0.1:0"
	cfg.APITLSCertFile, cfg.APITLSKeyFile, cfg.APITLSClientCAFile = server.CertFile, server.KeyFile, ca.CertFile
	cfg.APITLSAdmin, cfg.APITLSRead = []string{"cn:ops"}, []string{"o:monitoring"}
	ta := startTestAPI(t, cfg)
	base := "https://" + ta.addrs[0].String() + "/fleet/v1"
	before := ta.units(t)

	for name, hc := range map[string]*http.Client{
		"no certificate":                   tlsClient(t, ca.CertFile, nil),
		"another CA's certificate":         tlsClient(t, ca.CertFile, &foreign),
		"an expired certificate":           tlsClient(t, ca.CertFile, &expired),
		"a client not trusting the server": tlsClient(t, other.CertFile, &admin),
	} {
		if code, body, err := call(hc, "PUT", base+"/units/a.service", unitBody); err == nil {
			t.Errorf("%s: PUT answered %d %s, want refused at the handshake", name, code, body)
		}
	}
	plain := "http://" + ta.addrs[0].String() + "/fleet/v1/units/a.service"
	if code, body, err := call(&http.Client{Timeout: 10 * time.Second}, "PUT", plain, unitBody); err == nil && (code != 400 || !strings.Contains(body, "HTTP request to an HTTPS server")) {
		t.Errorf("plain HTTP to the TLS port: %d %s, want refused", code, body)
	}

	rd := tlsClient(t, ca.CertFile, &reader)
	for _, p := range []string{"/units", "/state", "/machines", "/units/a.service"} {
		code, body, err := call(rd, "GET", base+p, "")
		if err != nil || (code != 200 && code != 404) {
			t.Errorf("read-only GET %s: %d %s %v", p, code, body, err)
		}
	}
	for _, m := range []string{"PUT", "DELETE"} {
		code, body, err := call(rd, m, base+"/units/a.service", unitBody)
		want := fmt.Sprintf(`{"error":{"code":403,"message":"access denied: \"CN=prometheus,O=monitoring\" has role read-only, which may only read (GET), not %s"}}`, m)
		if err != nil || code != 403 || body != want {
			t.Errorf("read-only %s: %d %s %v; want 403 %s", m, code, body, err, want)
		}
	}
	code, body, err := call(tlsClient(t, ca.CertFile, &nobody), "GET", base+"/units", "")
	if err != nil || code != 403 || !strings.Contains(body, `\"CN=stranger\" has no role`) {
		t.Errorf("certificate without a role: %d %s %v", code, body, err)
	}
	if after := ta.units(t); !reflect.DeepEqual(before, after) {
		t.Fatalf("refused requests changed the registry: %v", after)
	}

	ad := tlsClient(t, ca.CertFile, &admin)
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"PUT", "/units/a.service", unitBody, 201},
		{"GET", "/units/a.service", "", 200},
		{"PUT", "/units/a.service", `{"desiredState":"loaded"}`, 204},
		{"PATCH", "/machines", `[{"op":"add","path":"/m1/metadata/a","value":"1"}]`, 204},
		{"DELETE", "/units/a.service", "", 204},
	} {
		if code, body, err := call(ad, c.method, base+c.path, c.body); err != nil || code != c.code {
			t.Errorf("admin %s %s: %d %s %v, want %d", c.method, c.path, code, body, err, c.code)
		}
	}
	big, err := http.NewRequest("GET", base+"/units", nil)
	if err != nil {
		t.Fatal(err)
	}
	big.Header.Set("X-Big", strings.Repeat("x", apiMaxHeaderBytes+8<<10)) // Go's server allows 4 KiB beyond the limit
	if resp, err := ad.Do(big); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers beyond %d bytes: %v %v, want 431", apiMaxHeaderBytes, resp, err)
	} else {
		resp.Body.Close()
	}
	if !strings.Contains(ta.logs.String(), "TLS handshake error") {
		t.Errorf("refused handshakes not logged:\n%s", ta.logs.String())
	}
}

// TestAPINoClientAuth: with api_tls_no_client_auth a client without a
// certificate is admin, and every start says loudly how unsafe that is.
func TestAPINoClientAuth(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "fleet")
	server := issue(t, ca, "server", testpki.Options{CommonName: "fleetd", Server: true})
	cfg := config.Defaults()
	cfg.APISocket, cfg.APITCP = "", "127.0.0.1:0"
	cfg.APITLSCertFile, cfg.APITLSKeyFile, cfg.APITLSNoClientAuth = server.CertFile, server.KeyFile, true
	ta := startTestAPI(t, cfg)
	code, body, err := call(tlsClient(t, ca.CertFile, nil), "PUT", "https://"+ta.addrs[0].String()+"/fleet/v1/units/a.service", unitBody)
	if err != nil || code != 201 {
		t.Errorf("PUT without a certificate: %d %s %v, want 201", code, body, err)
	}
	if !strings.Contains(ta.logs.String(), "INSECURE: api_tls_no_client_auth=true") {
		t.Errorf("no warning logged:\n%s", ta.logs.String())
	}
}

// TestActivatedTCPNeedsTLS: a TCP listener handed over by socket activation
// is served with TLS too, and refused without it.
func TestActivatedTCPNeedsTLS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc, err := newAccess(config.Defaults(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openAPI(config.Defaults(), []net.Listener{l}, acc); err == nil || !strings.Contains(err.Error(), "api_tls_certfile") {
		t.Errorf("activated TCP listener without TLS: %v, want an error naming api_tls_certfile", err)
	}
}

// TestAPISocket: the socket gets its mode and group before anyone can
// connect, nothing is left of the private directory it was made in, and a
// stale socket is replaced.
func TestAPISocket(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("chown to another group needs root")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "fleet.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	old := syscall.Umask(0)
	l, err := listenUnix(sock, 0o640, "4242")
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o640 || st.Sys().(*syscall.Stat_t).Gid != 4242 {
		t.Errorf("socket %v gid %d, want a socket 0640 of gid 4242", st.Mode(), st.Sys().(*syscall.Stat_t).Gid)
	}
	if l.Addr().String() != sock {
		t.Errorf("listener address %s, want %s", l.Addr(), sock)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want only the socket", entries, err)
	}
	if _, err := listenUnix(sock, 0o660, ""); err == nil || !strings.Contains(err.Error(), "served by another process") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	if _, err := listenUnix(filepath.Join(dir, "other.sock"), 0o660, "no-such-group-here"); err == nil || !strings.Contains(err.Error(), "api_socket_group") {
		t.Errorf("unknown group: %v, want an error naming api_socket_group", err)
	}
}

// TestSocketPeerRoles: over the real socket, a peer's role comes from its
// credentials: by default every peer that can connect is admin; with role
// lists, root is admin, a member of the read group may GET but its PUT is 403
// naming it and the role, and a peer whom the socket's mode keeps out cannot
// connect at all.
func TestSocketPeerRoles(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test must run as root in CI: it connects as other users")
		}
		t.Skip("connecting as other users needs root")
	}
	dir, err := os.MkdirTemp("", "fleetd-peer-") // short, and open to other users
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary, where other users may run it.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	client := filepath.Join(dir, "client")
	if err := os.WriteFile(client, self, 0o755); err != nil {
		t.Fatal(err)
	}
	// as runs the test binary as a client with uid and gid.
	as := func(uid, gid uint32, sock, method, path, body string) string {
		t.Helper()
		cmd := exec.Command(client)
		cmd.Env = append(os.Environ(), peerEnv+"="+strings.Join([]string{sock, method, path, body}, " "))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client uid %d: %v: %s", uid, err, out)
		}
		return string(out)
	}
	open := config.Defaults()
	open.APISocket, open.APISocketGroup = filepath.Join(dir, "open.sock"), "4242"
	ta := startTestAPI(t, open)
	if out := as(4243, 4242, open.APISocket, "PUT", "/fleet/v1/units/a.service", unitBody); !strings.HasPrefix(out, "201") {
		t.Errorf("default roles, group member PUT: %s, want 201", out)
	}
	if len(ta.units(t)) != 1 {
		t.Errorf("unit not created by an admin peer")
	}

	cfg := config.Defaults()
	cfg.APISocket, cfg.APISocketGroup = filepath.Join(dir, "roles.sock"), "4242"
	cfg.APISocketAdmin, cfg.APISocketRead = []string{"group:4240"}, []string{"group:4242"}
	ta = startTestAPI(t, cfg)
	if out := as(4243, 4242, cfg.APISocket, "GET", "/fleet/v1/units", ""); !strings.HasPrefix(out, "200") {
		t.Errorf("reader GET: %s, want 200", out)
	}
	want := `403 {"error":{"code":403,"message":"access denied: \"uid 4243 gid 4242\" has role read-only, which may only read (GET), not PUT"}}`
	if out := as(4243, 4242, cfg.APISocket, "PUT", "/fleet/v1/units/a.service", unitBody); out != want {
		t.Errorf("reader PUT: %s, want %s", out, want)
	}
	if len(ta.units(t)) != 0 {
		t.Errorf("a read-only peer's PUT changed the registry: %v", ta.units(t))
	}
	if out := as(4244, 4244, cfg.APISocket, "GET", "/fleet/v1/units", ""); !strings.Contains(out, "permission denied") {
		t.Errorf("peer outside the socket's group: %s, want permission denied", out)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", cfg.APISocket)
	}}}
	if code, body, err := call(hc, "PUT", "http://fleetd/fleet/v1/units/a.service", unitBody); err != nil || code != 201 {
		t.Errorf("root PUT: %d %s %v, want 201", code, body, err)
	}
	if u := ta.units(t); len(u) != 1 || !strings.HasPrefix(u["a.service"], string(core.Launched)) {
		t.Errorf("registry after root's PUT: %v", u)
	}
}
