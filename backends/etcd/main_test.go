package etcd

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/memory"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// One embedded etcd serves every test of the package that does not need its own
// server; each test gets a fresh key prefix so tests cannot see each other.
var shared struct {
	srv *Embedded
	cli *clientv3.Client
}

// testServerConfig is the fast setting for tests: short raft timeouts (the
// shortest lease etcd then grants is 1 s) and no fsync.
func testServerConfig() EmbeddedConfig {
	return EmbeddedConfig{TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true, Logger: zap.NewNop()}
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChildServer(dir))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := StartEmbedded(ctx, testServerConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the shared embedded etcd:", err)
		return 1
	}
	defer srv.Close()
	cli, err := Dial(ctx, ClientConfig{Endpoints: srv.Endpoints()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "connecting to the shared embedded etcd:", err)
		return 1
	}
	defer cli.Close()
	shared.srv, shared.cli = srv, cli
	return m.Run()
}

var prefixes atomic.Int64

// freshPrefix returns a key prefix no other test uses.
func freshPrefix() string {
	return fmt.Sprintf("/test/%d/", prefixes.Add(1))
}

// newTestRegistry returns a registry on the shared server under a fresh prefix,
// with leases driven by a manual clock.
func newTestRegistry(t *testing.T, opts ...Option) (*Registry, *memory.ManualClock) {
	t.Helper()
	clock := memory.NewManualClock(time.Unix(1_000_000, 0))
	opts = append([]Option{WithPrefix(freshPrefix()), WithClock(clock)}, opts...)
	reg, err := New(shared.cli, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return reg, clock
}
