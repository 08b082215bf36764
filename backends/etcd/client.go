package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// DefaultDialTimeout bounds the first connection to etcd.
const DefaultDialTimeout = 5 * time.Second

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
	// Logger receives the client library's own logs; nil discards them (errors
	// reach the caller as return values).
	Logger *zap.Logger
	// DialOptions are extra gRPC options, for example an interceptor that
	// counts requests.
	DialOptions []grpc.DialOption
}

// Dial connects to etcd and checks that some endpoint answers a status request
// within the dial timeout, so that a wrong address or credential fails here
// rather than at the first call. Close the client when done.
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
		Endpoints:   cfg.Endpoints,
		DialTimeout: timeout,
		TLS:         tlsConfig,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      logger,
		DialOptions: cfg.DialOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connecting to %v: %w", cfg.Endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var errs []error
	for _, ep := range cfg.Endpoints {
		if _, err := cli.Status(sctx, ep); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		return cli, nil
	}
	cli.Close()
	return nil, fmt.Errorf("etcd: no endpoint answers: %w", classify(ctx, errors.Join(errs...)))
}

// clientTLS builds the TLS configuration, or nil when no file is set.
func clientTLS(cfg ClientConfig) (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" {
		return nil, nil
	}
	info := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd: TLS configuration: %w", err)
	}
	return tc, nil
}
