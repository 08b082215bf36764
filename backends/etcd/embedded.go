package etcd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Defaults of EmbeddedConfig.
const (
	// DefaultCompactionRetention is how much history the server keeps: older
	// revisions are compacted away periodically.
	DefaultCompactionRetention = time.Hour
	// DefaultQuotaBytes is the most the database may grow to before etcd raises
	// its no-space alarm and refuses writes.
	DefaultQuotaBytes = 2 << 30
)

// startAttempts bounds the starts with fresh free ports when another process
// took a chosen port before etcd could bind it.
const startAttempts = 5

// EmbeddedConfig configures an etcd server run inside this process. The zero
// value is a durable single-member server on free loopback ports with a new
// temporary data directory.
type EmbeddedConfig struct {
	// Dir is the data directory. Empty: a new temporary directory, removed by
	// Close.
	Dir string
	// Name is the member's name ("fleet" if empty).
	Name string
	// ClientURL and PeerURL are where the server listens for clients and for
	// peers, such as "http://127.0.0.1:2379". Empty: 127.0.0.1 with a free port.
	ClientURL, PeerURL string
	// TickMs and ElectionMs are the raft heartbeat and election timeouts (etcd's
	// defaults, 100 and 1000, if zero). Tests use 10 and 100; the shortest lease
	// TTL etcd grants is 1.5 election timeouts.
	TickMs, ElectionMs uint
	// UnsafeNoFsync skips fsync: much faster, but a crash can lose
	// acknowledged writes. For tests only.
	UnsafeNoFsync bool
	// MaxTxnOps is the most operations one transaction may carry (128 if zero).
	MaxTxnOps uint
	// CompactionRetention: history older than this is compacted away
	// periodically (every tenth of it), so that a long-running server's store
	// stays small (DefaultCompactionRetention if zero).
	CompactionRetention time.Duration
	// QuotaBytes is the most the database may grow to before etcd refuses
	// writes (DefaultQuotaBytes if zero).
	QuotaBytes int64
	// TLS, if set, serves clients over TLS (https URLs).
	TLS *ServerTLS
	// Logger receives the server's logs; nil logs errors to stderr.
	Logger *zap.Logger
}

// ServerTLS is the TLS setup of an embedded server's client port.
type ServerTLS struct {
	// CertFile and KeyFile are the server's certificate and key.
	CertFile, KeyFile string
	// ClientCAFile, if set, requires clients to present a certificate signed by
	// this CA.
	ClientCAFile string
}

// Embedded is a running etcd server inside this process.
type Embedded struct {
	cfg       EmbeddedConfig // resolved: Dir and URLs set
	removeDir bool
	etcd      *embed.Etcd
}

// StartEmbedded starts an etcd server and waits until it serves clients, or
// until ctx is done.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	e := &Embedded{cfg: cfg}
	if e.cfg.Name == "" {
		e.cfg.Name = "fleet"
	}
	if e.cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "fleet-etcd-*")
		if err != nil {
			return nil, fmt.Errorf("embedded etcd: data directory: %w", err)
		}
		e.cfg.Dir, e.removeDir = dir, true
	}
	pickPorts := cfg.ClientURL == "" || cfg.PeerURL == ""
	for attempt := 1; ; attempt++ {
		if pickPorts {
			if err := e.pickPorts(cfg); err != nil {
				e.cleanup()
				return nil, err
			}
		}
		err := e.start(ctx)
		if err == nil {
			return e, nil
		}
		if !pickPorts || attempt == startAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			e.cleanup()
			return nil, err
		}
	}
}

// pickPorts fills the URLs left empty in cfg with free loopback ports.
func (e *Embedded) pickPorts(cfg EmbeddedConfig) error {
	e.cfg.ClientURL, e.cfg.PeerURL = cfg.ClientURL, cfg.PeerURL
	var err error
	if e.cfg.ClientURL == "" {
		scheme := "http"
		if cfg.TLS != nil {
			scheme = "https"
		}
		if e.cfg.ClientURL, err = loopbackURL(scheme); err != nil {
			return err
		}
	}
	if e.cfg.PeerURL == "" {
		if e.cfg.PeerURL, err = loopbackURL("http"); err != nil {
			return err
		}
	}
	return nil
}

// loopbackURL returns a URL on 127.0.0.1 with a port that was free a moment
// ago.
func loopbackURL(scheme string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("embedded etcd: finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("embedded etcd: finding a free port: %w", err)
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(port), nil
}

// start runs the server on the resolved configuration and waits until it is
// ready.
func (e *Embedded) start(ctx context.Context) error {
	ec, err := e.etcdConfig()
	if err != nil {
		return err
	}
	srv, err := embed.StartEtcd(ec)
	if err != nil {
		return fmt.Errorf("embedded etcd: starting on %s: %w", e.cfg.ClientURL, err)
	}
	select {
	case <-srv.Server.ReadyNotify():
		e.etcd = srv
		return nil
	case err := <-srv.Err():
		srv.Close()
		return fmt.Errorf("embedded etcd: failed while starting: %w", err)
	case <-ctx.Done():
		srv.Close()
		return fmt.Errorf("embedded etcd: not ready: %w", ctx.Err())
	}
}

// etcdConfig translates the resolved configuration for etcd's embed package.
func (e *Embedded) etcdConfig() (*embed.Config, error) {
	c := e.cfg
	cu, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL: %w", err)
	}
	pu, err := url.Parse(c.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer URL: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name, ec.Dir = c.Name, c.Dir
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	ec.InitialCluster = ec.InitialClusterFromName(c.Name)
	if c.TickMs > 0 {
		ec.TickMs = c.TickMs
	}
	if c.ElectionMs > 0 {
		ec.ElectionMs = c.ElectionMs
	}
	if c.MaxTxnOps > 0 {
		ec.MaxTxnOps = c.MaxTxnOps
	}
	ec.UnsafeNoFsync = c.UnsafeNoFsync
	if c.TLS != nil {
		ec.ClientTLSInfo.CertFile, ec.ClientTLSInfo.KeyFile = c.TLS.CertFile, c.TLS.KeyFile
		ec.ClientTLSInfo.TrustedCAFile = c.TLS.ClientCAFile
		ec.ClientTLSInfo.ClientCertAuth = c.TLS.ClientCAFile != ""
	}
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = cmp.Or(c.CompactionRetention, DefaultCompactionRetention).String()
	ec.QuotaBackendBytes = cmp.Or(c.QuotaBytes, DefaultQuotaBytes)
	if c.Logger != nil {
		ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(c.Logger)
	} else {
		ec.LogLevel, ec.LogOutputs = "error", []string{embed.StdErrLogOutput}
	}
	return ec, nil
}

// Endpoints returns the URLs clients connect to.
func (e *Embedded) Endpoints() []string { return []string{e.cfg.ClientURL} }

// Config returns the configuration the server runs with: Dir and URLs filled in.
func (e *Embedded) Config() EmbeddedConfig { return e.cfg }

// Err reports a fatal error of the running server.
func (e *Embedded) Err() <-chan error {
	if e.etcd == nil {
		return nil
	}
	return e.etcd.Err()
}

// Restart stops the server and starts it again on the same data directory and
// URLs, as a crash and restart would (minus the crash: pending writes are
// flushed). Clients reconnect by themselves.
func (e *Embedded) Restart(ctx context.Context) error {
	e.etcd.Close()
	e.etcd = nil
	return e.start(ctx)
}

// Close stops the server and, if StartEmbedded created the data directory,
// removes it.
func (e *Embedded) Close() error {
	if e.etcd != nil {
		e.etcd.Close()
		e.etcd = nil
	}
	return e.cleanup()
}

func (e *Embedded) cleanup() error {
	if !e.removeDir {
		return nil
	}
	if err := os.RemoveAll(e.cfg.Dir); err != nil {
		return fmt.Errorf("embedded etcd: removing %s: %w", e.cfg.Dir, err)
	}
	return nil
}
