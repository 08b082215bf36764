package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

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
	// Username and Password authenticate with etcd's auth, if set.
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
}

// Dial connects to etcd and checks, within the dial timeout, that the cluster
// answers a linearizable request (a quorum is up), so that a wrong address or
// credential fails here rather than at the first call. The client balances
// among all endpoints: dead ones, in any position, do not matter while a
// quorum answers. Close the client when done.
func Dial(ctx context.Context, cfg ClientConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("etcd: TLS certificate %q and key %q must be set together", cfg.CertFile, cfg.KeyFile)
	}
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	tlsConfig, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          timeout,
		DialKeepAliveTime:    orDefault(cfg.KeepAliveTime, DefaultKeepAliveTime),
		DialKeepAliveTimeout: orDefault(cfg.KeepAliveTimeout, DefaultKeepAliveTimeout),
		TLS:                  tlsConfig,
		Username:             cfg.Username,
		Password:             cfg.Password,
		Logger:               logger,
		DialOptions:          cfg.DialOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connecting to %v: %w", cfg.Endpoints, err)
	}
	mctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cli.MemberList(mctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd: no quorum answers at %v: %w", cfg.Endpoints, classify(ctx, err))
	}
	return cli, nil
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
	return tc, nil
}
