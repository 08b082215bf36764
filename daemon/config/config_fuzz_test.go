package config

import (
	"strings"
	"testing"
)

// FuzzLoad checks fleetd's configuration on an arbitrary file and
// environment: loading never panics, an error names where it comes from, an
// accepted configuration validates, and writing every option back as a file
// loads the same configuration again.
func FuzzLoad(f *testing.F) {
	for _, s := range [][2]string{
		{"verbosity=1\netcd_servers=[\"http://a:2379\", \"http://b:2379\"]\nmetadata = \"region=eu, disk=ssd\"\n", ""},
		{"agent_ttl=10s   ; a comment\nPUBLIC_IP = 10.0.0.1 # bare\nengine_reconcile_interval=0.5\n", "FLEET_TOKEN_LIMIT=7"},
		{"api_tcp=127.0.0.1:\\\n54728\n", "FLEET_METADATA=role=db\nFLEET_VERIFY_UNITS=true"},
		{"[section]\nx=1\n", ""},
		{"etcd_request_timeout=1e-9\napi_socket_mode=0600\nunit_manager=fake\n", ""},
		{"metadata='a=b=c,d='\nshutdown_mode=detach\n", "FLEET_AGENT_TTL=1h"},
		{"\xef\xbb\xbfverbose = \"unterminated\n", ""},
		{"etcd_key_prefix=x\n", "FLEET_ETCD_SERVERS=ftp://x"},
		{"agent_ttl=5s\nagent_fence_grace=2s\n", "FLEET_AGENT_FENCE_GRACE=1h"},
	} {
		f.Add([]byte(s[0]), s[1])
	}
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		src := Sources{Env: strings.Split(env, "\n")}
		c, _, err := load(data, src)
		if err != nil {
			if !strings.Contains(err.Error(), "fleet.conf") && !strings.Contains(err.Error(), "environment") && !strings.Contains(err.Error(), "invalid configuration") {
				t.Fatalf("error %q names neither the file, the environment nor the configuration", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted configuration does not validate: %v", err)
		}
		file, ok := writeBack(c)
		if !ok {
			return
		}
		again, _, err := load([]byte(file), Sources{})
		if err != nil {
			t.Fatalf("written back, the configuration is refused: %v\n%s", err, file)
		}
		for _, o := range options {
			if got, want := o.get(again), o.get(c); got != want {
				t.Fatalf("written back, %s is %q, want %q\n%s", o.name, got, want, file)
			}
		}
	})
}

// load is Load on a file's contents.
func load(data []byte, src Sources) (Config, []string, error) {
	entries, err := parseINI("fleet.conf", data)
	if err != nil {
		return Config{}, nil, err
	}
	return merge(entries, "fleet.conf", src)
}

// writeBack writes c as a configuration file, every option quoted; ok is
// false if a value cannot be written (it holds a newline or both quotes).
func writeBack(c Config) (string, bool) {
	var b strings.Builder
	for _, o := range options {
		v := o.get(c)
		q := `"`
		if strings.Contains(v, q) {
			q = "'"
		}
		if strings.Contains(v, q) || strings.ContainsAny(v, "\n\r\x00") {
			return "", false
		}
		b.WriteString(o.name + " = " + q + v + q + "\n")
	}
	return b.String(), true
}
