package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.conf")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, `# fleet.conf
verbosity=1
etcd_servers=["http://a:2379", "http://b:2379"]
metadata = "region=eu, disk=ssd"
agent_ttl=10s   ; a comment
PUBLIC_IP = 10.0.0.1 # bare value ends here
engine_reconcile_interval=0.5
api_tcp=127.0.0.1:\
54728
api_tls_certfile=/etc/fleet/api.pem
api_tls_keyfile=/etc/fleet/api-key.pem
api_tls_client_cafile=/etc/fleet/clients-ca.pem
api_tls_admin = cn:ops, o:fleet-admin
api_socket_read=group:monitor,
`)
	fs := flag.NewFlagSet("fleetd", flag.ContinueOnError)
	flags := RegisterFlags(fs)
	if err := fs.Parse([]string{"-agent-ttl=20s", "-token_limit", "7"}); err != nil {
		t.Fatal(err)
	}
	cfg, warnings, err := Load(Sources{
		File:  file,
		Env:   []string{"FLEET_AGENT_TTL=15s", "FLEET_VERBOSITY=", "FLEET_METADATA=role=db", "FLEET_VERIFY_UNITS=true", "HOME=/root"},
		Flags: flags(),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Verbosity = 1
	want.EtcdServers = []string{"http://a:2379", "http://b:2379"}
	want.Metadata = map[string]string{"role": "db"}
	want.AgentTTL = 20 * time.Second
	want.PublicIP = "10.0.0.1"
	want.EngineReconcileInterval = 500 * time.Millisecond
	want.TokenLimit = 7
	want.APITCP = "127.0.0.1:54728"
	want.APITLSCertFile, want.APITLSKeyFile = "/etc/fleet/api.pem", "/etc/fleet/api-key.pem"
	want.APITLSClientCAFile = "/etc/fleet/clients-ca.pem"
	want.APITLSAdmin = []string{"cn:ops", "o:fleet-admin"}
	want.APISocketRead = []string{"group:monitor"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config:\n got  %+v\n want %+v", cfg, want)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "verify_units") {
		t.Errorf("warnings = %q, want one about verify_units", warnings)
	}
	if got := cfg.EngineLeaseTTL(); got != 2500*time.Millisecond {
		t.Errorf("engine lease TTL %v, want 5 intervals", got)
	}
}

func TestLoadErrorsNameTheProblem(t *testing.T) {
	for _, c := range []struct {
		name, file string
		env        []string
		want       []string
	}{
		{"unknown key", "verbosity=1\nbogus_option=3\n", nil, []string{"fleet.conf:2", `unknown option "bogus_option"`}},
		{"bad duration", "agent_ttl=30x\n", nil, []string{"fleet.conf:1", "agent_ttl", "30x", "duration"}},
		{"bad seconds", "engine_reconcile_interval=fast\n", nil, []string{"engine_reconcile_interval", "fast"}},
		{"malformed metadata", "metadata=region=eu,ssd\n", nil, []string{"metadata", `"ssd" is not key=value`}},
		{"section", "[fleet]\nverbosity=1\n", nil, []string{"fleet.conf:1", "sections are not allowed"}},
		{"no equals", "verbosity\n", nil, []string{"fleet.conf:1", "not key = value"}},
		{"unclosed quote", `metadata="a=b` + "\n", nil, []string{"fleet.conf:1", "no closing"}},
		{"continued to the end", "metadata=a=b\\\n", nil, []string{"ends inside a continued line"}},
		{"ttl too short", "agent_ttl=10ms\n", nil, []string{"agent_ttl = 10ms", "between"}},
		{"fence grace too short", "agent_ttl=30s\nagent_fence_grace=10s\n", nil, []string{"agent_fence_grace = 10s", "longer than agent_ttl/3 (10s"}},
		{"fence grace below a second", "agent_ttl=1s\nagent_fence_grace=900ms\n", nil, []string{"agent_fence_grace = 900ms", "at least 1s"}},
		{"fence grace too long", "agent_ttl=5s\n", []string{"FLEET_AGENT_FENCE_GRACE=51s"}, []string{"agent_fence_grace = 51s", "at most 10 × agent_ttl (50s)"}},
		{"negative fence grace", "agent_fence_grace=-2s\n", nil, []string{"agent_fence_grace = -2s", "must be 0 (off)"}},
		{"bad fence grace", "agent_fence_grace=2\n", nil, []string{"fleet.conf:1", "agent_fence_grace", "duration"}},
		{"bad server URL", "etcd_servers=127.0.0.1:2379\n", nil, []string{"etcd_servers", "127.0.0.1:2379"}},
		{"bad env", "", []string{"FLEET_TOKEN_LIMIT=many"}, []string{"environment FLEET_TOKEN_LIMIT", "not an integer"}},
		{"unit manager", "unit_manager=docker\n", nil, []string{"unit_manager = docker", "systemd or fake"}},
		{"cert without key", "etcd_servers=https://a:2379\netcd_certfile=/c.pem\n", nil, []string{"etcd_keyfile"}},
		{"user without password", "etcd_servers=https://a:2379\netcd_username=fleet\n", nil, []string{"etcd_username = fleet", "needs etcd_password"}},
		{"password without user", "etcd_servers=https://a:2379\n", []string{"FLEET_ETCD_PASSWORD=s3cret"}, []string{"etcd_password = (hidden)", "needs etcd_username"}},
		{"TLS on the embedded etcd", "etcd_cafile=/ca.pem\n", nil, []string{"etcd_cafile", "only with etcd_servers"}},
		{"relative data dir", "data_dir=var/lib/fleet\n", nil, []string{"data_dir", "absolute"}},
		{"tcp without TLS", "api_tcp=127.0.0.1:4444\n", nil, []string{"api_tcp = 127.0.0.1:4444", "only with TLS", "api_tls_certfile", "api_tls_keyfile", "api_tls_client_cafile", "api_tls_no_client_auth"}},
		{"tcp without client CA", "api_tcp=127.0.0.1:4444\napi_tls_certfile=/c.pem\napi_tls_keyfile=/k.pem\n", nil, []string{"api_tls_client_cafile", "api_tls_no_client_auth = true"}},
		{"TLS key without cert", "api_tls_keyfile=/k.pem\n", nil, []string{"api_tls_certfile", "go together"}},
		{"no client auth with a CA", "api_tls_no_client_auth=true\napi_tls_client_cafile=/ca.pem\n", nil, []string{"api_tls_no_client_auth = true", "contradicts api_tls_client_cafile"}},
		{"relative TLS file", "api_tls_certfile=c.pem\napi_tls_keyfile=/k.pem\n", nil, []string{"api_tls_certfile = c.pem", "absolute"}},
		{"bad certificate role", "api_tls_admin=cn:ops,ops\n", nil, []string{"api_tls_admin", `entry "ops"`, "cn: or o:"}},
		{"empty role name", "api_tls_read=o:\n", nil, []string{"api_tls_read", `entry "o:"`}},
		{"bad socket role", "api_socket_admin=uid:0\n", nil, []string{"api_socket_admin", `entry "uid:0"`, "user: or group:"}},
		{"bad no client auth", "api_tls_no_client_auth=maybe\n", nil, []string{"api_tls_no_client_auth", "boolean"}},
	} {
		_, _, err := Load(Sources{File: writeFile(t, c.file), Env: c.env})
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
}

// TestFenceGrace: self-fencing is off by default, its bounds are inclusive
// where documented, and a grace not shorter than agent_ttl loads with a
// warning that says what it costs.
func TestFenceGrace(t *testing.T) {
	if g := Defaults().AgentFenceGrace; g != 0 {
		t.Fatalf("default agent_fence_grace %v, want 0 (off)", g)
	}
	for _, c := range []struct {
		file string
		env  []string
		want time.Duration
		warn string
	}{
		{"agent_ttl=5s\nagent_fence_grace=2s\n", nil, 2 * time.Second, ""},
		{"agent_ttl=5s\n", []string{"FLEET_AGENT_FENCE_GRACE=1.7s"}, 1700 * time.Millisecond, ""},
		{"agent_ttl=2s\nagent_fence_grace=1s\n", nil, time.Second, ""},
		{"agent_ttl=5s\nagent_fence_grace=50s\n", nil, 50 * time.Second, "up to 45s"},
		{"agent_ttl=5s\nagent_fence_grace=5s\n", nil, 5 * time.Second, "not shorter than agent_ttl"},
		{"agent_fence_grace=0\n", nil, 0, ""},
	} {
		cfg, warnings, err := Load(Sources{File: writeFile(t, c.file), Env: c.env})
		if err != nil {
			t.Errorf("%q %q: %v", c.file, c.env, err)
			continue
		}
		if cfg.AgentFenceGrace != c.want {
			t.Errorf("%q %q: agent_fence_grace %v, want %v", c.file, c.env, cfg.AgentFenceGrace, c.want)
		}
		joined := strings.Join(warnings, "\n")
		if c.warn == "" && joined != "" || c.warn != "" && !strings.Contains(joined, c.warn) {
			t.Errorf("%q %q: warnings %q, want %q", c.file, c.env, warnings, c.warn)
		}
	}
}

func TestLoadFileMissingOrDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{filepath.Join(dir, "missing.conf"), dir} {
		if _, _, err := Load(Sources{File: f}); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Load(%s) = %v, want an error naming it", f, err)
		}
	}
}

func TestChangedSplitsReloadable(t *testing.T) {
	old := Defaults()
	cur := old
	cur.Metadata = map[string]string{"a": "b"}
	cur.Verbosity = 1
	cur.EtcdServers = []string{"http://x:2379"}
	reload, restart := Changed(old, cur)
	if !reflect.DeepEqual(reload, []string{"verbosity", "metadata"}) || !reflect.DeepEqual(restart, []string{"etcd_servers"}) {
		t.Errorf("Changed = %v, %v", reload, restart)
	}
}

// TestPasswordNeverPrinted: errors about etcd_password never show its value.
func TestPasswordNeverPrinted(t *testing.T) {
	_, _, err := Load(Sources{File: writeFile(t, "etcd_password=s3cret\n")})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "etcd_password") {
		t.Fatalf("error %v: want one naming etcd_password without its value", err)
	}
}
