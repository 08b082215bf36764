package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/internal/fleetssh/sshtest"
)

// remoteSetup is a cluster whose machines all publish 127.0.0.1 (machine 0
// also serves the API on TCP), an ssh-agent, and an SSH server standing for
// every machine: it runs fd-forward for real and answers other commands
// with their text (exit 3 for a command mentioning "fail").
type remoteSetup struct {
	cl       *cluster
	agent    *sshtest.Agent
	srv      *sshtest.Server
	port     string
	apiTCP   string
	pki      apiPKI
	known    string
	env      map[string]string
	unitsDir string
}

func newRemoteSetup(t *testing.T) *remoteSetup {
	t.Helper()
	rs := &remoteSetup{pki: newAPIPKI(t)}
	cl := startCluster(t, func(i int, cfg *config.Config) {
		cfg.PublicIP = "127.0.0.1"
		if i == 0 {
			rs.pki.serveTLS(cfg)
		}
	})
	rs.cl = cl
	rs.apiTCP = cl.daemons[0].APIAddrs()[len(cl.daemons[0].APIAddrs())-1].String()
	rs.agent = sshtest.NewAgent(t)
	rs.srv = sshtest.NewServer(t, rs.agent.Key, remoteHandler)
	rs.port = rs.srv.Addr[strings.LastIndex(rs.srv.Addr, ":")+1:]
	rs.known = filepath.Join(t.TempDir(), "fleetctl", "known_hosts")
	rs.env = cl.driverEnv("api")
	rs.env["SSH_AUTH_SOCK"] = rs.agent.Socket
	rs.env["FLEETCTL_KNOWN_HOSTS_FILE"] = rs.known
	rs.unitsDir = t.TempDir()
	return rs
}

// remoteHandler is what the SSH server runs.
func remoteHandler(cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
	var args []string
	for _, f := range strings.Fields(cmd) {
		if u, err := strconv.Unquote(f); err == nil {
			f = u
		}
		args = append(args, f)
	}
	if len(args) == 3 && args[0] == "fleetctl" && args[1] == "fd-forward" {
		return newApp(stdin, stdout, stderr, func(string) string { return "" }).run(context.Background(), args[1:])
	}
	fmt.Fprintf(stdout, "remote: %s\n", cmd)
	if strings.Contains(cmd, "fail") {
		return 3
	}
	return 0
}

// start launches a unit bound to machine i.
func (rs *remoteSetup) start(t *testing.T, name string, i int) {
	t.Helper()
	p := filepath.Join(rs.unitsDir, name)
	body := "[Service]\nExecStart=/bin/sleep infinity\n[X-Fleet]\nMachineID=" + testMachines[i].id + "\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := fleetctl(t, rs.env, "", "start", p); r.code != 0 {
		t.Fatalf("start %s: %d %s", name, r.code, r.stderr)
	}
}

// run runs fleetctl as machine 0 with stdin.
func (rs *remoteSetup) run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return fleetctlWith(t, env, testMachines[0].id, func(a *app) { a.stdin = strings.NewReader(stdin) }, args...)
}

// TestRemoteCommands: status and journal of a unit on another machine run
// over SSH, its exit status fleetctl's; the host key is asked about once,
// remembered, and a changed one refused; ssh finds machines by ID prefix or
// unit.
func TestRemoteCommands(t *testing.T) {
	rs := newRemoteSetup(t)
	rs.start(t, "here.service", 0)
	rs.start(t, "there.service", 1)
	rs.start(t, "fail-there.service", 1)
	rs.start(t, "113f16a7.service", 2)
	port := "--ssh-port=" + rs.port

	r := rs.run(t, rs.env, "no\n", "status", port, "there.service")
	if r.code != 1 || !strings.Contains(r.stderr, "Are you sure you want to continue connecting (yes/no)?") || !strings.Contains(r.stderr, "host key verification failed") {
		t.Fatalf("declined host: %+v", r)
	}
	r = rs.run(t, rs.env, "yes\n", "status", port, "here", "there.service")
	want := "[local] systemctl status -l here.service\n\nremote: \"systemctl\" \"status\" \"-l\" \"there.service\"\n"
	if r.code != 0 || r.stdout != want || !strings.Contains(r.stderr, "Permanently added") {
		t.Fatalf("status: %+v\nwant stdout %q", r, want)
	}
	r = rs.run(t, rs.env, "", "journal", port, "-f", "--lines=5", "fail-there")
	if r.code != 3 || r.stdout != "remote: \"journalctl\" \"--unit\" \"fail-there.service\" \"--no-pager\" \"-n\" \"5\" \"--output\" \"short\" \"-f\"\n" || r.stderr != "" {
		t.Fatalf("journal: %+v", r)
	}

	global := filepath.Join(rs.unitsDir, "g.service")
	if err := os.WriteFile(global, []byte("[Service]\nExecStart=/bin/sleep infinity\n[X-Fleet]\nGlobal=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := fleetctl(t, rs.env, "", "start", global); r.code != 0 {
		t.Fatalf("start g: %+v", r)
	}
	rs.cl.waitFor(t, "every unit settled", settled)
	r = rs.run(t, rs.env, "", "status", port, "g")
	remote := "remote: \"systemctl\" \"status\" \"-l\" \"g.service\"\n"
	if want := "[local] systemctl status -l g.service\n\n" + remote + "\n" + remote; r.code != 0 || r.stdout != want {
		t.Fatalf("status of a global unit: %+v\nwant stdout %q", r, want)
	}
	r = rs.run(t, rs.env, "", "restart", port, "g")
	remote = "remote: \"systemctl\" \"restart\" \"g.service\"\n"
	if want := "[local] systemctl restart g.service\n" + remote + remote; r.code != 0 || r.stdout != want {
		t.Fatalf("restart of a global unit: %+v\nwant stdout %q", r, want)
	}

	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"ssh", port, "2c4a", "--", "uptime", "-p"}, 0, "remote: uptime -p\n"},
		{[]string{"ssh", port, "there", "fail"}, 3, "remote: fail\n"},
		{[]string{"ssh", port, "-A", "--machine", "113f16a7", "true"}, 0, "remote: true\n"},
		{[]string{"ssh", port, "-u", "113f16a7", "true"}, 0, "remote: true\n"},
		{[]string{"ssh", port, "113f16a7", "true"}, 1, ""},
		{[]string{"ssh", port, "nosuch", "true"}, 1, ""},
	} {
		r := rs.run(t, rs.env, "", c.args...)
		if r.code != c.code || r.stdout != c.out {
			t.Errorf("%v: %+v; want exit %d stdout %q", c.args, r, c.code, c.out)
		}
	}

	strictOff := map[string]string{"FLEETCTL_STRICT_HOST_KEY_CHECKING": "false", "FLEETCTL_KNOWN_HOSTS_FILE": filepath.Join(t.TempDir(), "none")}
	for k, v := range rs.env {
		if strictOff[k] == "" {
			strictOff[k] = v
		}
	}
	if r := rs.run(t, strictOff, "", "status", port, "there"); r.code != 0 || r.stderr != "" {
		t.Fatalf("strict checking off: %+v", r)
	}
	if _, err := os.Stat(strictOff["FLEETCTL_KNOWN_HOSTS_FILE"]); !os.IsNotExist(err) {
		t.Fatalf("known hosts written with strict checking off: %v", err)
	}

	other := sshtest.NewServer(t, rs.agent.Key, remoteHandler)
	before := len(other.Commands())
	otherPort := "--ssh-port=" + other.Addr[strings.LastIndex(other.Addr, ":")+1:]
	data, err := os.ReadFile(rs.known)
	if err != nil {
		t.Fatal(err)
	}
	// Claim the first server's key for the other server's address.
	swapped := strings.Replace(string(data), ":"+rs.port+" ", ":"+other.Addr[strings.LastIndex(other.Addr, ":")+1:]+" ", 1)
	if err := os.WriteFile(rs.known, []byte(swapped), 0o600); err != nil {
		t.Fatal(err)
	}
	r = rs.run(t, rs.env, "yes\n", "status", otherPort, "there")
	if r.code != 1 || !strings.Contains(r.stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED") || len(other.Commands()) != before {
		t.Fatalf("changed host key: %+v, commands %v", r, other.Commands())
	}

	noAgent := map[string]string{}
	for k, v := range rs.env {
		noAgent[k] = v
	}
	delete(noAgent, "SSH_AUTH_SOCK")
	if r := rs.run(t, noAgent, "", "status", port, "there"); r.code != 1 || !strings.Contains(r.stderr, "SSH_AUTH_SOCK") {
		t.Fatalf("no agent: %+v", r)
	}
}

// TestTunnel: --tunnel carries the API over TCP (direct-tcpip) and over a
// unix socket (fd-forward on the tunnel host), and etcd's traffic.
func TestTunnel(t *testing.T) {
	rs := newRemoteSetup(t)
	rs.start(t, "here.service", 0)
	withEnv := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range rs.env {
			env[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	direct := fleetctl(t, rs.env, "", "list-unit-files")
	if direct.code != 0 || !strings.Contains(direct.stdout, "here.service") {
		t.Fatalf("without tunnel: %+v", direct)
	}
	etcdEnv := rs.cl.driverEnv("etcd")
	for name, env := range map[string]map[string]string{
		"api-tcp": withEnv("FLEETCTL_TUNNEL", rs.srv.Addr, "FLEETCTL_ENDPOINT", "https://"+rs.apiTCP, "FLEETCTL_CA_FILE", rs.pki.ca.CertFile,
			"FLEETCTL_CERT_FILE", rs.pki.admin.CertFile, "FLEETCTL_KEY_FILE", rs.pki.admin.KeyFile),
		"api-unix": withEnv("FLEETCTL_TUNNEL", rs.srv.Addr),
		"etcd": withEnv("FLEETCTL_TUNNEL", rs.srv.Addr, "FLEETCTL_DRIVER", "etcd",
			"FLEETCTL_ENDPOINT", etcdEnv["FLEETCTL_ENDPOINT"], "FLEETCTL_ETCD_KEY_PREFIX", etcdEnv["FLEETCTL_ETCD_KEY_PREFIX"]),
	} {
		forwards, commands := len(rs.srv.Forwards()), len(rs.srv.Commands())
		r := rs.run(t, env, "yes\n", "list-unit-files")
		if r.code != 0 || r.stdout != direct.stdout {
			t.Errorf("%s: %+v; want stdout %q", name, r, direct.stdout)
		}
		used := len(rs.srv.Forwards()) > forwards
		if name == "api-unix" {
			used = len(rs.srv.Commands()) > commands && strings.Contains(rs.srv.Commands()[len(rs.srv.Commands())-1], "fd-forward")
		}
		if !used {
			t.Errorf("%s: the tunnel was not used (forwards %v, commands %v)", name, rs.srv.Forwards(), rs.srv.Commands())
		}
	}

	// An https API (here a stand-in answering /machines) is verified under
	// its own name through the tunnel.
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fleet/v1/machines" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"machines":[{"id":"m-tls","primaryIP":"10.9.8.7"}]}`)
	}))
	defer tlsSrv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	httpsEnv := withEnv("FLEETCTL_TUNNEL", rs.srv.Addr, "FLEETCTL_ENDPOINT", tlsSrv.URL, "FLEETCTL_CA_FILE", ca)
	r := rs.run(t, httpsEnv, "", "list-machines", "--no-legend")
	target := strings.TrimPrefix(tlsSrv.URL, "https://")
	if f := rs.srv.Forwards(); r.code != 0 || r.stdout != "m-tls\t10.9.8.7\t-\n" || f[len(f)-1] != target {
		t.Errorf("https through a tunnel: %+v, forwards %v", r, rs.srv.Forwards())
	}
	delete(httpsEnv, "FLEETCTL_CA_FILE")
	if r := rs.run(t, httpsEnv, "", "list-machines"); r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("https through a tunnel without the CA: %+v", r)
	}
}
