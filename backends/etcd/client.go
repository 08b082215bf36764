package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Defaults of ClientConfig.
const (
	// DefaultDialTimeout bounds the first connection to etcd.
	DefaultDialTimeout = 5 * time.Second
	// DefaultKeepAliveTime is how long a connection may stay silent before the
	// client pings the member (gRPC allows no less than 10 s).
	DefaultKeepAliveTime = 10 * time.Second
	// DefaultKeepAliveTimeout is how long the client waits for the answer to a
	// ping before it closes the connection and fails over.
	DefaultKeepAliveTimeout = 3 * time.Second
)

// ClientConfig says how to reach an etcd cluster.
type ClientConfig struct {
	// Endpoints are the URLs of the cluster's members, such as
	// "http://127.0.0.1:2379"; the client balances and fails over among them.
	Endpoints []string
	// DialTimeout bounds the first connection (DefaultDialTimeout if zero).
	DialTimeout time.Duration
	// CAFile, CertFile and KeyFile configure TLS: the CA that signed the
	// servers' certificates, and this client's certificate and key. Any of them
	// set turns TLS on; CertFile and KeyFile go together.
	CAFile, CertFile, KeyFile string
	// Username and Password authenticate with etcd's auth; they go together.
	// Without them, a server with auth enabled and client-certificate checking
	// takes the user name from the client certificate's common name.
	Username, Password string
	// KeepAliveTime and KeepAliveTimeout: after KeepAliveTime without traffic
	// on a connection the client pings the member, and closes the connection
	// (failing over to another member) if no answer comes within
	// KeepAliveTimeout, so that a frozen or black-holed member, and the watches
	// it serves, are noticed within seconds (DefaultKeepAliveTime and
	// DefaultKeepAliveTimeout if zero). Only connections that carry a stream
	// (a watch, as Notify opens) are pinged: etcd's servers answer pings on
	// an idle connection with "too many pings" and drop it.
	KeepAliveTime, KeepAliveTimeout time.Duration
	// Logger receives the client library's own logs; nil discards them (errors
	// reach the caller as return values).
	Logger *zap.Logger
	// DialOptions are extra gRPC options, for example an interceptor that
	// counts requests.
	DialOptions []grpc.DialOption
	// Dialer, if set, opens the TCP connections to the members (through an
	// SSH tunnel, say); nil dials directly.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
}

// Dial connects to etcd and checks, within the dial timeout, that the cluster
// answers a linearizable request (a quorum is up), so that a wrong address or
// credential fails here rather than at the first call: a certificate the
// server refuses or a server certificate the CA file does not vouch for is
// named at once (not after the timeout), and so is a user name or password
// etcd refuses. The client balances among all endpoints: dead ones, in any
// position, do not matter while a quorum answers. Close the client when done.
func Dial(ctx context.Context, cfg ClientConfig) (*clientv3.Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	timeout := orDefault(cfg.DialTimeout, DefaultDialTimeout)
	tlsConfig, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := probeTLS(dctx, cfg, probeConfig(tlsConfig)); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	opts := cfg.DialOptions
	if cfg.Dialer != nil {
		opts = append(slices.Clip(opts), grpc.WithContextDialer(cfg.Dialer))
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          max(time.Until(deadline(dctx)), time.Millisecond),
		DialKeepAliveTime:    orDefault(cfg.KeepAliveTime, DefaultKeepAliveTime),
		DialKeepAliveTimeout: orDefault(cfg.KeepAliveTimeout, DefaultKeepAliveTimeout),
		TLS:                  tlsConfig,
		Username:             cfg.Username,
		Password:             cfg.Password,
		Logger:               logger,
		DialOptions:          opts,
	})
	if errors.Is(err, rpctypes.ErrAuthFailed) {
		return nil, fmt.Errorf("etcd: user %q at %v: wrong user name or password: %w", cfg.Username, cfg.Endpoints, err)
	}
	if err != nil {
		return nil, fmt.Errorf("etcd: connecting to %v: %w", cfg.Endpoints, err)
	}
	if _, err := cli.MemberList(dctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd: no quorum answers at %v: %w", cfg.Endpoints, classify(ctx, err))
	}
	return cli, nil
}

// check refuses settings that cannot work.
func (cfg ClientConfig) check() error {
	switch {
	case len(cfg.Endpoints) == 0:
		return errors.New("etcd: no endpoints")
	case (cfg.CertFile == "") != (cfg.KeyFile == ""):
		return fmt.Errorf("etcd: TLS certificate %q and key %q must be set together", cfg.CertFile, cfg.KeyFile)
	case cfg.Username != "" && cfg.Password == "":
		// etcd's client would silently send no credentials at all.
		return fmt.Errorf("etcd: user %q has no password", cfg.Username)
	case cfg.Username == "" && cfg.Password != "":
		return errors.New("etcd: a password is set without a user name")
	}
	return nil
}

// deadline is ctx's deadline (which Dial always sets).
func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// probeConfig is the TLS configuration etcd's client uses for https
// endpoints: tc, or the system's CAs when no file is set.
func probeConfig(tc *tls.Config) *tls.Config {
	if tc == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return tc
}

// orDefault returns d, or def if d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// clientTLS builds the TLS configuration, or nil when no file is set.
func clientTLS(cfg ClientConfig) (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" {
		return nil, nil
	}
	if cfg.CAFile != "" {
		// etcd's own loader accepts a file without any certificate in it, and
		// the mistake would only show as endpoints that never answer.
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd: TLS CA file: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd: TLS CA file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	info := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd: TLS configuration: %w", err)
	}
	if cfg.CertFile != "" {
		if err := checkValidity(cfg.CertFile, cfg.KeyFile, time.Now()); err != nil {
			return nil, err
		}
	}
	return tc, nil
}

// checkValidity refuses a client certificate outside its validity period,
// naming the file, rather than letting the server refuse it.
func checkValidity(certFile, keyFile string, now time.Time) error {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("etcd: TLS client certificate %s: %w", certFile, err)
	}
	switch leaf := pair.Leaf; {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("etcd: TLS client certificate %s expired at %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("etcd: TLS client certificate %s is not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
