package api

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

// One embedded etcd serves every test of the package; each test gets a fresh
// key prefix, so tests cannot see each other's state.
var shared struct {
	srv *etcd.Embedded
	cli *clientv3.Client
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the shared embedded etcd:", err)
		return 1
	}
	defer srv.Close()
	cli, err := etcd.Dial(ctx, etcd.ClientConfig{Endpoints: srv.Endpoints()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "connecting to the shared embedded etcd:", err)
		return 1
	}
	defer cli.Close()
	shared.srv, shared.cli = srv, cli
	return m.Run()
}

var keyPrefixes atomic.Int64

// freshPrefix returns a key prefix no other test uses.
func freshPrefix() string { return fmt.Sprintf("/apitest/%d/", keyPrefixes.Add(1)) }

// backends are the registries the API suite runs over.
var backends = []string{"etcd", "memory"}

// newRegistry returns an empty registry of backend whose leases expire by a
// manual clock (so they never expire during a test).
func newRegistry(t *testing.T, backend string) core.Registry {
	t.Helper()
	clock := memory.NewManualClock(time.Unix(1_000_000, 0))
	switch backend {
	case "memory":
		return memory.New(clock)
	case "etcd":
		reg, err := etcd.New(shared.cli, etcd.WithPrefix(freshPrefix()), etcd.WithClock(clock))
		if err != nil {
			t.Fatalf("etcd.New: %v", err)
		}
		return reg
	}
	t.Fatalf("unknown backend %q", backend)
	return nil
}
