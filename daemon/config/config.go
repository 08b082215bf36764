// Package config is fleetd's configuration: fleet's options (fleet.conf and
// FLEET_* environment variables, as fleet v1.0.0 reads them) plus the ones this
// rebuild adds, merged in one visible order — defaults, then the file, then
// the environment, then command-line flags — and validated as a whole, so that
// a bad value stops fleetd with a message naming the option and the value.
//
//	cfg, warnings, err := config.Load(config.Sources{File: path, Env: os.Environ(), Flags: set})
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Unit manager kinds.
const (
	// ManagerSystemd drives the machine's real systemd over D-Bus.
	ManagerSystemd = "systemd"
	// ManagerFake runs an in-memory fake systemd: nothing really runs. For
	// scale tests of real fleetd processes only.
	ManagerFake = "fake"
)

// Shutdown modes: what SIGTERM does to this machine's units.
const (
	// ShutdownDrain stops and removes this machine's units and leaves the
	// cluster at once, so they move elsewhere without waiting for the TTL (fleet's
	// behaviour).
	ShutdownDrain = "drain"
	// ShutdownDetach leaves the units running and the presence to expire, for a
	// restart or an upgrade: the restarted fleetd adopts them.
	ShutdownDetach = "detach"
)

// Config is every fleetd option. The zero value is not valid; start from
// Defaults.
type Config struct {
	Verbosity int

	EtcdServers        []string // empty: run an embedded etcd in DataDir
	EtcdUsername       string
	EtcdPassword       string
	EtcdCAFile         string
	EtcdCertFile       string
	EtcdKeyFile        string
	EtcdKeyPrefix      string
	EtcdRequestTimeout time.Duration

	EngineReconcileInterval time.Duration
	PublicIP                string // empty: detected at start
	Metadata                map[string]string
	AgentTTL                time.Duration
	// AgentFenceGrace is self-fencing: when the machine's presence has not
	// been renewed for this long, its agent stops every unit it runs. 0: off
	// (fleet's behaviour: units keep running).
	AgentFenceGrace time.Duration
	UnitsDirectory  string // empty: the unit manager's default
	SystemdUser     bool
	TokenLimit      int
	DisableEngine   bool
	DisableWatches  bool

	DataDir        string
	MachineIDFile  string
	APISocket      string // empty: no unix socket (unless socket-activated)
	APISocketMode  fs.FileMode
	APISocketGroup string // empty: the process's group
	APITCP         string // empty: no TCP listener
	// The API's TLS (every TCP listener) and roles; see docs/api.md.
	APITLSCertFile        string
	APITLSKeyFile         string
	APITLSClientCAFile    string   // CA of the client certificates
	APITLSNoClientAuth    bool     // no client certificates: every TLS client is admin
	APITLSAdmin           []string // cn:<CommonName> or o:<Organization>
	APITLSRead            []string
	APISocketAdmin        []string // user:<name|uid> or group:<name|gid>; all empty: every peer is admin
	APISocketRead         []string
	UnitManager           string
	ShutdownMode          string
	EmbeddedEtcdClientURL string
	EmbeddedEtcdPeerURL   string
}

// Defaults returns fleet's defaults, and this rebuild's for the new options.
func Defaults() Config {
	return Config{
		EtcdKeyPrefix:           "/_coreos.com/fleet/",
		EtcdRequestTimeout:      time.Second,
		EngineReconcileInterval: 2 * time.Second,
		AgentTTL:                30 * time.Second,
		TokenLimit:              100,
		DataDir:                 "/var/lib/fleet",
		MachineIDFile:           "/etc/machine-id",
		APISocket:               "/var/run/fleet.sock",
		APISocketMode:           0o660,
		UnitManager:             ManagerSystemd,
		ShutdownMode:            ShutdownDrain,
		EmbeddedEtcdClientURL:   "http://127.0.0.1:2379",
		EmbeddedEtcdPeerURL:     "http://127.0.0.1:2380",
	}
}

// Bounds of the numeric options.
const (
	MinAgentTTL = time.Second
	MaxAgentTTL = 24 * time.Hour
	// MinFenceGrace is the shortest agent_fence_grace other than 0; the
	// grace must also exceed agent_ttl/3, the renewal period.
	MinFenceGrace = time.Second
	// MaxFenceGraceTTLs bounds agent_fence_grace in agent_ttls.
	MaxFenceGraceTTLs = 10
	MinEngineInterval = 100 * time.Millisecond
	MaxEngineInterval = time.Hour
	MaxRequestTimeout = time.Minute
	MaxTokenLimit     = 10000
	// maxMetadataKeys is the most keys the metadata option may set.
	maxMetadataKeys = 64
	// maxMetadataBytes is the longest value of the metadata option.
	maxMetadataBytes = 4096
	// maxAccessEntries is the most entries an api_*_admin or api_*_read option may list.
	maxAccessEntries = 1024
)

// EngineLeaseTTL is the engine's leadership TTL: five reconcile intervals, as
// in fleet.
func (c Config) EngineLeaseTTL() time.Duration { return 5 * c.EngineReconcileInterval }

// Embedded reports whether fleetd runs its own etcd (no etcd_servers).
func (c Config) Embedded() bool { return len(c.EtcdServers) == 0 }

// Validate checks the whole configuration and reports every bad option, each
// named with its value.
func (c Config) Validate() error {
	var errs []error
	bad := func(opt string, v any, why string) {
		errs = append(errs, fmt.Errorf("%s = %v: %s", opt, v, why))
	}
	for _, s := range c.EtcdServers {
		if err := checkURL(s); err != nil {
			bad("etcd_servers", s, err.Error())
		}
	}
	if (c.EtcdCertFile == "") != (c.EtcdKeyFile == "") {
		bad("etcd_certfile", c.EtcdCertFile, "etcd_certfile and etcd_keyfile go together")
	}
	c.validateEtcdAccess(bad)
	if !strings.HasPrefix(c.EtcdKeyPrefix, "/") {
		bad("etcd_key_prefix", c.EtcdKeyPrefix, "must start with /")
	}
	checkRange := func(opt string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(opt, d, fmt.Sprintf("must be between %v and %v", lo, hi))
		}
	}
	checkRange("etcd_request_timeout", c.EtcdRequestTimeout, time.Millisecond, MaxRequestTimeout)
	checkRange("engine_reconcile_interval", c.EngineReconcileInterval, MinEngineInterval, MaxEngineInterval)
	checkRange("agent_ttl", c.AgentTTL, MinAgentTTL, MaxAgentTTL)
	if g := c.AgentFenceGrace; g != 0 && (g < MinFenceGrace || g <= c.AgentTTL/3 || g > MaxFenceGraceTTLs*c.AgentTTL) {
		bad("agent_fence_grace", g, fmt.Sprintf("must be 0 (off), or at least %v, longer than agent_ttl/3 (%v, the renewal period: a shorter grace fences between two renewals) and at most %d × agent_ttl (%v)",
			MinFenceGrace, c.AgentTTL/3, MaxFenceGraceTTLs, MaxFenceGraceTTLs*c.AgentTTL))
	}
	if c.PublicIP != "" && net.ParseIP(c.PublicIP) == nil {
		bad("public_ip", c.PublicIP, "not an IP address")
	}
	if c.TokenLimit < 1 || c.TokenLimit > MaxTokenLimit {
		bad("token_limit", c.TokenLimit, fmt.Sprintf("must be between 1 and %d", MaxTokenLimit))
	}
	for _, p := range [][3]string{
		{"data_dir", c.DataDir, "required"}, {"machine_id_file", c.MachineIDFile, "required"},
		{"units_directory", c.UnitsDirectory, ""}, {"api_socket", c.APISocket, ""},
		{"api_tls_certfile", c.APITLSCertFile, ""}, {"api_tls_keyfile", c.APITLSKeyFile, ""},
		{"api_tls_client_cafile", c.APITLSClientCAFile, ""},
	} {
		if (p[1] != "" || p[2] != "") && !filepath.IsAbs(p[1]) {
			bad(p[0], p[1], "must be an absolute path")
		}
	}
	if c.APISocketMode&^0o777 != 0 {
		bad("api_socket_mode", fmt.Sprintf("%o", c.APISocketMode), "only permission bits are allowed")
	}
	if c.APITCP != "" {
		if _, _, err := net.SplitHostPort(c.APITCP); err != nil {
			bad("api_tcp", c.APITCP, "want host:port")
		}
	}
	errs = append(errs, c.validateAPIAccess()...)
	if c.UnitManager != ManagerSystemd && c.UnitManager != ManagerFake {
		bad("unit_manager", c.UnitManager, "want systemd or fake")
	}
	if c.ShutdownMode != ShutdownDrain && c.ShutdownMode != ShutdownDetach {
		bad("shutdown_mode", c.ShutdownMode, "want drain or detach")
	}
	if c.Embedded() {
		for _, u := range [][2]string{{"embedded_etcd_client_url", c.EmbeddedEtcdClientURL}, {"embedded_etcd_peer_url", c.EmbeddedEtcdPeerURL}} {
			if err := checkURL(u[1]); err != nil {
				bad(u[0], u[1], err.Error())
			}
		}
	}
	return errors.Join(errs...)
}

// validateEtcdAccess checks the TLS and authentication options: a user name
// and a password go together (etcd's client would otherwise send no
// credentials, and etcd take the user from the client certificate), and none
// applies to the embedded etcd, which serves plain http without
// authentication. The password's value is never printed.
func (c Config) validateEtcdAccess(bad func(opt string, v any, why string)) {
	if c.EtcdUsername != "" && c.EtcdPassword == "" {
		bad("etcd_username", c.EtcdUsername, "needs etcd_password (or FLEET_ETCD_PASSWORD)")
	}
	if c.EtcdUsername == "" && c.EtcdPassword != "" {
		bad("etcd_password", "(hidden)", "needs etcd_username")
	}
	if !c.Embedded() {
		return
	}
	for _, o := range [][2]string{
		{"etcd_cafile", c.EtcdCAFile}, {"etcd_certfile", c.EtcdCertFile}, {"etcd_keyfile", c.EtcdKeyFile},
		{"etcd_username", c.EtcdUsername}, {"etcd_password", c.EtcdPassword},
	} {
		if o[1] != "" {
			bad(o[0], "(set)", "applies only with etcd_servers: the embedded etcd serves plain http without authentication")
		}
	}
}

// checkURL accepts an http or https URL with a host and nothing else.
func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("not a URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an http:// or https:// URL")
	case u.Host == "":
		return errors.New("the URL has no host")
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
		return errors.New("want scheme://host:port only")
	}
	return nil
}

// validateAPIAccess checks the API's TLS and role options: a TCP listener is
// served only with TLS, and with client certificates unless
// api_tls_no_client_auth says otherwise.
func (c Config) validateAPIAccess() []error {
	var errs []error
	if (c.APITLSCertFile == "") != (c.APITLSKeyFile == "") {
		errs = append(errs, fmt.Errorf("api_tls_certfile = %q, api_tls_keyfile = %q: the two go together", c.APITLSCertFile, c.APITLSKeyFile))
	}
	if c.APITCP != "" && c.APITLSCertFile == "" {
		errs = append(errs, fmt.Errorf("api_tcp = %s: the API is served over TCP only with TLS: set api_tls_certfile and api_tls_keyfile", c.APITCP))
	}
	if c.APITCP != "" && c.APITLSClientCAFile == "" && !c.APITLSNoClientAuth {
		errs = append(errs, fmt.Errorf("api_tcp = %s: clients must present a certificate: set api_tls_client_cafile to the CA that signs them (or api_tls_no_client_auth = true to let anyone who reaches the port be admin)", c.APITCP))
	}
	if c.APITLSNoClientAuth && c.APITLSClientCAFile != "" {
		errs = append(errs, fmt.Errorf("api_tls_no_client_auth = true: contradicts api_tls_client_cafile = %s", c.APITLSClientCAFile))
	}
	for _, l := range []struct {
		opt      string
		entries  []string
		prefixes []string
	}{
		{"api_tls_admin", c.APITLSAdmin, []string{"cn:", "o:"}},
		{"api_tls_read", c.APITLSRead, []string{"cn:", "o:"}},
		{"api_socket_admin", c.APISocketAdmin, []string{"user:", "group:"}},
		{"api_socket_read", c.APISocketRead, []string{"user:", "group:"}},
	} {
		for _, e := range l.entries {
			if !slices.ContainsFunc(l.prefixes, func(p string) bool { return strings.HasPrefix(e, p) && len(e) > len(p) }) {
				errs = append(errs, fmt.Errorf("%s: entry %q: want %s followed by a name", l.opt, e, strings.Join(l.prefixes, " or ")))
			}
		}
		if len(l.entries) > maxAccessEntries {
			errs = append(errs, fmt.Errorf("%s: %d entries, more than %d", l.opt, len(l.entries), maxAccessEntries))
		}
	}
	return errs
}
