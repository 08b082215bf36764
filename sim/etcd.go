package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/core"
)

// EtcdServer is one embedded etcd that many simulated clusters share, each under
// a key prefix of its own, so that starting a cluster costs no server start.
type EtcdServer struct {
	server *etcd.Embedded
	cli    *clientv3.Client
	mu     sync.Mutex
	n      int
}

// StartEtcd starts an embedded etcd on loopback in a temporary directory, with
// settings for tests and simulation (short ticks, no fsync).
func StartEtcd(ctx context.Context) (*EtcdServer, error) {
	srv, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("sim: start etcd: %w", err)
	}
	cli, err := etcd.Dial(ctx, etcd.ClientConfig{Endpoints: srv.Endpoints()})
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("sim: dial etcd: %w", err)
	}
	return &EtcdServer{server: srv, cli: cli}, nil
}

// Backend returns a factory of registries on this server. Each registry gets a
// fresh prefix, and its leases expire by the simulator's virtual clock: the
// simulator serializes every call, so runs are deterministic.
func (s *EtcdServer) Backend() BackendFactory {
	return func(clock core.Clock) (Backend, error) {
		s.mu.Lock()
		s.n++
		prefix := fmt.Sprintf("/sim/%d/", s.n)
		s.mu.Unlock()
		ctx := context.Background()
		// A client of its own: its watches end with it, so that no other
		// cluster's Settle asks for progress on a stream whose watches are
		// being cancelled (etcd-io/etcd#21969: the client can then panic).
		cli, err := etcd.Dial(ctx, etcd.ClientConfig{Endpoints: s.server.Endpoints()})
		if err != nil {
			return Backend{}, fmt.Errorf("sim: dial etcd: %w", err)
		}
		reg, err := etcd.New(cli, etcd.WithPrefix(prefix), etcd.WithClock(clock))
		if err != nil {
			cli.Close()
			return Backend{}, fmt.Errorf("sim: etcd registry: %w", err)
		}
		return Backend{
			Name:     "etcd",
			Registry: reg,
			Expire:   func() error { return reg.Expire(ctx) },
			Settle:   func() error { return reg.Settle(ctx) },
			Close: func() error {
				_, err := s.cli.Delete(ctx, prefix, clientv3.WithPrefix())
				return errors.Join(err, cli.Close())
			},
		}, nil
	}
}

// Close stops the server.
func (s *EtcdServer) Close() error {
	cerr := s.cli.Close()
	if err := s.server.Close(); err != nil {
		return err
	}
	return cerr
}

// EtcdBackend returns a factory that starts a fresh embedded etcd for each
// registry it makes, so that no cluster's epochs or trace depend on another's;
// the backend's Close stops the server and removes its directory. The returned
// function stops the servers still running (a cluster not closed).
func EtcdBackend() (BackendFactory, func() error) {
	var mu sync.Mutex
	live := map[*EtcdServer]bool{}
	factory := func(clock core.Clock) (Backend, error) {
		srv, err := StartEtcd(context.Background())
		if err != nil {
			return Backend{}, err
		}
		b, err := srv.Backend()(clock)
		if err != nil {
			return Backend{}, errors.Join(err, srv.Close())
		}
		mu.Lock()
		live[srv] = true
		mu.Unlock()
		closeReg := b.Close
		b.Close = func() error {
			mu.Lock()
			delete(live, srv)
			mu.Unlock()
			return errors.Join(closeReg(), srv.Close())
		}
		return b, nil
	}
	stop := func() error {
		mu.Lock()
		defer mu.Unlock()
		var errs []error
		for srv := range live {
			errs = append(errs, srv.Close())
			delete(live, srv)
		}
		return errors.Join(errs...)
	}
	return factory, stop
}
