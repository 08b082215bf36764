package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// option is one fleetd option: its name (fleet's, lowercase with underscores),
// how to parse a value into a Config, how to print it back, and whether a
// running fleetd can take a new value on SIGHUP.
type option struct {
	name   string
	usage  string
	set    func(c *Config, v string) error
	get    func(c Config) string
	reload bool
}

// deprecated are fleet's options that this rebuild reads and ignores, with why.
var deprecated = map[string]string{
	"verify_units":         "signed units are no longer supported; ignored",
	"authorized_keys_file": "signed units are no longer supported; ignored",
	"enable_grpc":          "the experimental gRPC registry is not part of this rebuild; ignored",
}

// options lists every option, in the order of the documentation.
var options = []option{
	{"verbosity", "log at DEBUG level when above 0", intOpt(func(c *Config) *int { return &c.Verbosity }), func(c Config) string { return strconv.Itoa(c.Verbosity) }, true},
	{"etcd_servers", "etcd client URLs, comma-separated; empty: run an embedded etcd", setServers, func(c Config) string { return strings.Join(c.EtcdServers, ",") }, false},
	{"etcd_username", "etcd user name", strOpt(func(c *Config) *string { return &c.EtcdUsername }), func(c Config) string { return c.EtcdUsername }, false},
	{"etcd_password", "etcd password", strOpt(func(c *Config) *string { return &c.EtcdPassword }), func(c Config) string { return c.EtcdPassword }, false},
	{"etcd_cafile", "CA of the etcd servers' certificates", strOpt(func(c *Config) *string { return &c.EtcdCAFile }), func(c Config) string { return c.EtcdCAFile }, false},
	{"etcd_certfile", "client certificate for etcd", strOpt(func(c *Config) *string { return &c.EtcdCertFile }), func(c Config) string { return c.EtcdCertFile }, false},
	{"etcd_keyfile", "client key for etcd", strOpt(func(c *Config) *string { return &c.EtcdKeyFile }), func(c Config) string { return c.EtcdKeyFile }, false},
	{"etcd_key_prefix", "root of fleet's keys in etcd", strOpt(func(c *Config) *string { return &c.EtcdKeyPrefix }), func(c Config) string { return c.EtcdKeyPrefix }, false},
	{"etcd_request_timeout", "seconds one etcd request may take", secondsOpt(func(c *Config) *time.Duration { return &c.EtcdRequestTimeout }), func(c Config) string { return seconds(c.EtcdRequestTimeout) }, false},
	{"engine_reconcile_interval", "seconds between engine passes; the engine lease lasts five", secondsOpt(func(c *Config) *time.Duration { return &c.EngineReconcileInterval }), func(c Config) string { return seconds(c.EngineReconcileInterval) }, false},
	{"public_ip", "IP address announced for this machine; empty: detected", strOpt(func(c *Config) *string { return &c.PublicIP }), func(c Config) string { return c.PublicIP }, true},
	{"metadata", "k=v[,k=v...] announced for this machine", setMetadata, func(c Config) string { return formatMetadata(c.Metadata) }, true},
	{"agent_ttl", "machine presence TTL, a Go duration such as 30s", durationOpt(func(c *Config) *time.Duration { return &c.AgentTTL }), func(c Config) string { return c.AgentTTL.String() }, false},
	{"agent_fence_grace", "self-fencing: stop this machine's units when its presence is not renewed for this long, a Go duration; 0: off", durationOpt(func(c *Config) *time.Duration { return &c.AgentFenceGrace }), func(c Config) string { return c.AgentFenceGrace.String() }, false},
	{"units_directory", "where unit files are written; empty: the unit manager's default", strOpt(func(c *Config) *string { return &c.UnitsDirectory }), func(c Config) string { return c.UnitsDirectory }, false},
	{"systemd_user", "drive the user manager ($XDG_RUNTIME_DIR) instead of the system one", boolOpt(func(c *Config) *bool { return &c.SystemdUser }), func(c Config) string { return strconv.FormatBool(c.SystemdUser) }, false},
	{"token_limit", "API page size", intOpt(func(c *Config) *int { return &c.TokenLimit }), func(c Config) string { return strconv.Itoa(c.TokenLimit) }, true},
	{"disable_engine", "never run an engine on this machine", boolOpt(func(c *Config) *bool { return &c.DisableEngine }), func(c Config) string { return strconv.FormatBool(c.DisableEngine) }, true},
	{"disable_watches", "no etcd watches: reconcile on timers only", boolOpt(func(c *Config) *bool { return &c.DisableWatches }), func(c Config) string { return strconv.FormatBool(c.DisableWatches) }, false},

	{"data_dir", "fleetd's state: the persisted session and the embedded etcd", strOpt(func(c *Config) *string { return &c.DataDir }), func(c Config) string { return c.DataDir }, false},
	{"machine_id_file", "file holding this machine's ID", strOpt(func(c *Config) *string { return &c.MachineIDFile }), func(c Config) string { return c.MachineIDFile }, false},
	{"api_socket", "unix socket of the HTTP API when not socket-activated; empty: none", strOpt(func(c *Config) *string { return &c.APISocket }), func(c Config) string { return c.APISocket }, false},
	{"api_socket_mode", "permissions of the API socket, octal", setMode, func(c Config) string { return fmt.Sprintf("%04o", c.APISocketMode) }, false},
	{"api_socket_group", "group owning the API socket; empty: fleetd's", strOpt(func(c *Config) *string { return &c.APISocketGroup }), func(c Config) string { return c.APISocketGroup }, false},
	{"api_tcp", "host:port of a TCP listener for the HTTP API; empty: none", strOpt(func(c *Config) *string { return &c.APITCP }), func(c Config) string { return c.APITCP }, false},
	{"api_tls_certfile", "TLS certificate of the API's TCP listener", strOpt(func(c *Config) *string { return &c.APITLSCertFile }), func(c Config) string { return c.APITLSCertFile }, false},
	{"api_tls_keyfile", "key of api_tls_certfile", strOpt(func(c *Config) *string { return &c.APITLSKeyFile }), func(c Config) string { return c.APITLSKeyFile }, false},
	{"api_tls_client_cafile", "CA that signs the API's client certificates", strOpt(func(c *Config) *string { return &c.APITLSClientCAFile }), func(c Config) string { return c.APITLSClientCAFile }, false},
	{"api_tls_no_client_auth", "accept TLS clients without a certificate, each as admin (insecure)", boolOpt(func(c *Config) *bool { return &c.APITLSNoClientAuth }), func(c Config) string { return strconv.FormatBool(c.APITLSNoClientAuth) }, false},
	{"api_tls_admin", "client certificates that are admin: cn:<CommonName>,o:<Organization>,...", listOpt(func(c *Config) *[]string { return &c.APITLSAdmin }), func(c Config) string { return strings.Join(c.APITLSAdmin, ",") }, false},
	{"api_tls_read", "client certificates that are read-only: cn:<CommonName>,o:<Organization>,...", listOpt(func(c *Config) *[]string { return &c.APITLSRead }), func(c Config) string { return strings.Join(c.APITLSRead, ",") }, false},
	{"api_socket_admin", "socket peers that are admin: user:<name|uid>,group:<name|gid>,...; with api_socket_read empty too: every peer", listOpt(func(c *Config) *[]string { return &c.APISocketAdmin }), func(c Config) string { return strings.Join(c.APISocketAdmin, ",") }, false},
	{"api_socket_read", "socket peers that are read-only: user:<name|uid>,group:<name|gid>,...", listOpt(func(c *Config) *[]string { return &c.APISocketRead }), func(c Config) string { return strings.Join(c.APISocketRead, ",") }, false},
	{"unit_manager", "systemd, or fake (nothing really runs: scale tests only)", strOpt(func(c *Config) *string { return &c.UnitManager }), func(c Config) string { return c.UnitManager }, false},
	{"shutdown_mode", "on SIGTERM: drain (stop this machine's units and leave) or detach (leave them running)", strOpt(func(c *Config) *string { return &c.ShutdownMode }), func(c Config) string { return c.ShutdownMode }, true},
	{"embedded_etcd_client_url", "where the embedded etcd serves clients", strOpt(func(c *Config) *string { return &c.EmbeddedEtcdClientURL }), func(c Config) string { return c.EmbeddedEtcdClientURL }, false},
	{"embedded_etcd_peer_url", "where the embedded etcd serves peers", strOpt(func(c *Config) *string { return &c.EmbeddedEtcdPeerURL }), func(c Config) string { return c.EmbeddedEtcdPeerURL }, false},
}

// lookup finds an option by name.
func lookup(name string) (option, bool) {
	for _, o := range options {
		if o.name == name {
			return o, true
		}
	}
	return option{}, false
}

// Names lists every option's name, in documentation order.
func Names() []string {
	out := make([]string, len(options))
	for i, o := range options {
		out[i] = o.name
	}
	return out
}

// Usage returns an option's one-line description.
func Usage(name string) string {
	o, _ := lookup(name)
	return o.usage
}

func strOpt(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func intOpt(f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*f(c) = n
		return nil
	}
}

func boolOpt(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not a boolean (true or false)")
		}
		*f(c) = b
		return nil
	}
}

// listOpt parses a comma-separated list, each entry trimmed, empty ones
// dropped.
func listOpt(f func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
		*f(c) = out
		return nil
	}
}

// secondsOpt parses fleet's float-seconds options ("2.0").
func secondsOpt(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || x != x || x < 0 || x > 1e6 {
			return fmt.Errorf("not a number of seconds")
		}
		*f(c) = time.Duration(x * float64(time.Second))
		return nil
	}
}

func durationOpt(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not a duration such as 30s")
		}
		*f(c) = d
		return nil
	}
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// setServers parses fleet's etcd_servers: comma-separated URLs, each trimmed of
// spaces, brackets and quotes, so the JSON-array form of fleet.conf.sample
// works too.
func setServers(c *Config, v string) error {
	c.EtcdServers = nil
	for _, s := range strings.Split(v, ",") {
		s = strings.Trim(s, ` ["]`)
		if s != "" {
			c.EtcdServers = append(c.EtcdServers, s)
		}
	}
	return nil
}

// setMetadata parses k=v[,k=v...]. Unlike fleet, which ignored them, an entry
// without '=' or with an empty key is an error; the last duplicate wins.
func setMetadata(c *Config, v string) error {
	if len(v) > maxMetadataBytes {
		return fmt.Errorf("longer than the limit of %d bytes", maxMetadataBytes)
	}
	md := map[string]string{}
	for _, item := range strings.Split(v, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || k == "" {
			return fmt.Errorf("entry %q is not key=value", strings.TrimSpace(item))
		}
		md[k] = val
	}
	if len(md) > maxMetadataKeys {
		return fmt.Errorf("more than the limit of %d keys", maxMetadataKeys)
	}
	c.Metadata = md
	if len(md) == 0 {
		c.Metadata = nil
	}
	return nil
}

func formatMetadata(md map[string]string) string {
	parts := make([]string, 0, len(md))
	for _, k := range slices.Sorted(maps.Keys(md)) {
		parts = append(parts, k+"="+md[k])
	}
	return strings.Join(parts, ",")
}

func setMode(c *Config, v string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
	if err != nil {
		return fmt.Errorf("not an octal mode such as 0660")
	}
	c.APISocketMode = fsMode(n)
	return nil
}
