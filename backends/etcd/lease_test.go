package etcd

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

// requestCounter counts the gRPC requests a client sends, by method; a stream
// (watch, keep-alive) counts once when opened.
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) add(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[method[strings.LastIndex(method, "/")+1:]]++
}

// take returns the counts since the last take, as "Method=n ..." sorted.
func (c *requestCounter) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for m, n := range c.n {
		parts = append(parts, m+"="+itoa(n))
	}
	sort.Strings(parts)
	c.n = map[string]int{}
	return strings.Join(parts, " ")
}

// waitFor waits (at most 5 s) until method has been called, without taking
// the counts: for requests sent in the background, like a watch being opened.
func (c *requestCounter) waitFor(t testing.TB, method string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		n := c.n[method]
		c.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s request within 5 s", method)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *requestCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := 0
	for _, n := range c.n {
		sum += n
	}
	c.n = map[string]int{}
	return sum
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// countingClient dials the shared server with a client whose requests are
// counted.
func countingClient(t testing.TB, endpoints []string) (*clientv3.Client, *requestCounter) {
	t.Helper()
	c := &requestCounter{n: map[string]int{}}
	cli, err := Dial(context.Background(), ClientConfig{Endpoints: endpoints, DialOptions: []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			c.add(method)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			c.add(method)
			return streamer(ctx, desc, cc, method, opts...)
		}),
	}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	c.take()
	return cli, c
}

// TestRequestsPerCall pins what each steady-state call costs in etcd requests,
// with etcd's own TTLs: renewals are one keep-alive and reads one range; a
// standby engine reads the leader key once and then watches it, so that its
// later attempts cost nothing while the leader lives.
func TestRequestsPerCall(t *testing.T) {
	cli, count := countingClient(t, shared.srv.Endpoints())
	reg, err := New(cli, WithPrefix(freshPrefix()))
	must(t, err)
	ctx := t.Context()
	m := core.MachineState{ID: "m1", Version: "1"}
	standby := func() error {
		_, err := reg.AcquireLeadership(ctx, "e2", "e2/1", ttl)
		if !errors.Is(err, core.ErrNotLeader) {
			return err
		}
		return nil
	}
	steps := []struct {
		name, want string
		do         func() error
	}{
		{"first heartbeat", "LeaseGrant=1 Range=1 Txn=1", func() error { return reg.Heartbeat(ctx, m, "s1", ttl) }},
		{"renewal", "LeaseKeepAlive=1", func() error { return reg.Heartbeat(ctx, m, "s1", ttl) }},
		{"changed record", "LeaseKeepAlive=1 Txn=1", func() error {
			m.Version = "2"
			return reg.Heartbeat(ctx, m, "s1", ttl)
		}},
		{"publish", "Txn=1", func() error {
			return reg.PublishUnitStates(ctx, "m1", "s1", []core.UnitState{{Unit: "a.service"}}, nil)
		}},
		{"acquire", "LeaseGrant=1 Range=1 Txn=1", func() error { _, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl); return err }},
		{"renew leadership", "LeaseKeepAlive=1", func() error { _, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl); return err }},
		{"standby engine", "Range=1 Watch=1", func() error {
			err := standby()
			count.waitFor(t, "Watch") // opened in the background
			return err
		}},
		{"standby again", "", standby},
		{"agent read", "Range=1", func() error { _, err := reg.MachinePlacements(ctx, "m1"); return err }},
		{"leave", "LeaseRevoke=1", func() error { return reg.Leave(ctx, "m1", "s1") }},
	}
	for _, s := range steps {
		must(t, s.do())
		if got := count.take(); got != s.want {
			t.Errorf("%s: requests %q, want %q", s.name, got, s.want)
		}
	}
}

// TestVirtualRenewalsCostNothing: with a virtual clock a renewal is only a new
// deadline in the client.
func TestVirtualRenewalsCostNothing(t *testing.T) {
	cli, count := countingClient(t, shared.srv.Endpoints())
	clock := memory.NewManualClock(time.Unix(0, 0))
	reg, err := New(cli, WithPrefix(freshPrefix()), WithClock(clock))
	must(t, err)
	must(t, reg.Heartbeat(t.Context(), core.MachineState{ID: "m1"}, "s1", ttl))
	_, err = reg.AcquireLeadership(t.Context(), "e1", "e1/1", ttl)
	must(t, err)
	count.take()
	clock.Advance(ttl / 2)
	must(t, reg.Heartbeat(t.Context(), core.MachineState{ID: "m1"}, "s1", ttl))
	_, err = reg.AcquireLeadership(t.Context(), "e1", "e1/1", ttl)
	must(t, err)
	if got := count.take(); got != "" {
		t.Fatalf("virtual renewals sent requests: %s", got)
	}
}

// TestEtcdTTLExpiry: without a virtual clock, etcd expires a presence that is
// not renewed, with its states, and keeps one that is.
func TestEtcdTTLExpiry(t *testing.T) {
	reg, err := New(shared.cli, WithPrefix(freshPrefix()))
	must(t, err)
	ctx := t.Context()
	// One second is the shortest TTL the test server grants; the renewed
	// presence has slack for a slow machine.
	const short, renewed = time.Second, 3 * time.Second
	must(t, reg.Heartbeat(ctx, core.MachineState{ID: "dies"}, "s1", short))
	must(t, reg.PublishUnitStates(ctx, "dies", "s1", []core.UnitState{{Unit: "a.service"}}, nil))
	must(t, reg.Heartbeat(ctx, core.MachineState{ID: "lives"}, "s2", renewed))
	deadline := time.Now().Add(5 * time.Second)
	for {
		must(t, reg.Heartbeat(ctx, core.MachineState{ID: "lives"}, "s2", renewed))
		ms, err := reg.Machines(ctx)
		must(t, err)
		if len(ms) == 1 {
			if ms[0].ID != "lives" {
				t.Fatalf("Machines = %v, want only the renewed one", ms)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence not renewed for 5 s still there: %v", ms)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ss, err := reg.UnitStates(ctx)
	must(t, err)
	if len(ss) != 0 {
		t.Fatalf("states outlived their machine's presence: %v", ss)
	}
	if err := reg.PublishUnitStates(ctx, "dies", "s1", nil, nil); !errors.Is(err, core.ErrNotPresent) {
		t.Fatalf("publish after expiry: got %v, want ErrNotPresent", err)
	}
}

// TestSecondProcessSameSession: a Registry that did not create a presence or
// leadership (another process, or this one restarted with its state) adopts
// what its session holds, and conflicts with what another session of the same
// machine ID holds: a second live process never shares the leader's fence.
func TestSecondProcessSameSession(t *testing.T) {
	prefix := freshPrefix()
	first, err := New(shared.cli, WithPrefix(prefix))
	must(t, err)
	second, err := New(shared.cli, WithPrefix(prefix))
	must(t, err)
	ctx := t.Context()
	must(t, first.Heartbeat(ctx, core.MachineState{ID: "m1"}, "s1", ttl))
	f1, err := first.AcquireLeadership(ctx, "e1", "s1", ttl)
	must(t, err)

	must(t, second.Heartbeat(ctx, core.MachineState{ID: "m1", Version: "2"}, "s1", ttl))
	must(t, second.PublishUnitStates(ctx, "m1", "s1", []core.UnitState{{Unit: "a.service"}}, nil))
	if err := second.Heartbeat(ctx, core.MachineState{ID: "m1"}, "s2", ttl); !errors.Is(err, core.ErrMachineConflict) {
		t.Fatalf("second session: got %v, want ErrMachineConflict", err)
	}
	if _, err := second.AcquireLeadership(ctx, "e1", "s2", ttl); !errors.Is(err, core.ErrNotLeader) {
		t.Fatalf("leadership from a second live session of e1: got %v, want ErrNotLeader", err)
	}
	f2, err := second.AcquireLeadership(ctx, "e1", "s1", ttl)
	must(t, err)
	if f2 != f1 {
		t.Fatalf("adopted leadership fence %v, want %v", f2, f1)
	}
	// The first process still sees the changed record and can leave.
	ms, err := first.Machines(ctx)
	must(t, err)
	if len(ms) != 1 || ms[0].Version != "2" {
		t.Fatalf("Machines = %v, want m1 with version 2", ms)
	}
	must(t, first.Leave(ctx, "m1", "s1"))
	if err := second.Heartbeat(ctx, core.MachineState{ID: "m1"}, "s2", ttl); err != nil {
		t.Fatalf("new session after the old one left: %v", err)
	}
	must(t, second.ResignLeadership(ctx, f2))
	if _, err := first.AcquireLeadership(ctx, "e9", "s9", ttl); err != nil {
		t.Fatalf("acquire after the adopted lease was resigned: %v", err)
	}
}

// acquireWithin retries AcquireLeadership until it succeeds, for at most d;
// other errors than ErrNotLeader fail the test.
func acquireWithin(t *testing.T, reg *Registry, engine, session string, lease, d time.Duration) core.Fence {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := reg.AcquireLeadership(t.Context(), engine, session, lease)
		if err == nil {
			return f
		}
		if !errors.Is(err, core.ErrNotLeader) {
			t.Fatalf("AcquireLeadership %s: %v", engine, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not get the leadership within %v: %v", engine, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStandbyFollowsLeaderKey: standby engines in other processes answer from
// their watch of the leader key, without a request, while the leader lives; they
// take over once it resigns, or once its lease expires under etcd's own TTL, and
// the deposed engine's fenced writes are then refused.
func TestStandbyFollowsLeaderKey(t *testing.T) {
	prefix := freshPrefix()
	leader, err := New(shared.cli, WithPrefix(prefix))
	must(t, err)
	cli, count := countingClient(t, shared.srv.Endpoints())
	standby, err := New(cli, WithPrefix(prefix))
	must(t, err)
	ctx := t.Context()
	f1, err := leader.AcquireLeadership(ctx, "e1", "s1", ttl)
	must(t, err)
	if _, err := standby.AcquireLeadership(ctx, "e2", "s2", ttl); !errors.Is(err, core.ErrNotLeader) {
		t.Fatalf("standby while e1 leads: %v, want ErrNotLeader", err)
	}
	count.waitFor(t, "Watch") // opened in the background
	for range 20 {
		if _, err := standby.AcquireLeadership(ctx, "e2", "s2", ttl); !errors.Is(err, core.ErrNotLeader) {
			t.Fatalf("standby while e1 leads: %v, want ErrNotLeader", err)
		}
	}
	if got := count.take(); got != "Range=1 Watch=1" {
		t.Fatalf("21 standby attempts sent %q, want one read and one watch", got)
	}

	must(t, leader.ResignLeadership(ctx, f1))
	f2 := acquireWithin(t, standby, "e2", "s2", time.Second, 5*time.Second)

	// e2 stops renewing: etcd expires its lease (1 s, the shortest the test
	// server grants) and e1, watching, takes over; e2's fence is then stale.
	f3 := acquireWithin(t, leader, "e1", "s1", ttl, 10*time.Second)
	if f3.Epoch <= f2.Epoch {
		t.Fatalf("epoch after expiry %d, want above %d", f3.Epoch, f2.Epoch)
	}
	if _, err := standby.ApplySchedule(ctx, f2, []core.ScheduleOp{placeOp("a.service", "m1")}); !errors.Is(err, core.ErrStaleFence) {
		t.Fatalf("deposed engine's write after its lease expired: %v, want ErrStaleFence", err)
	}
	if _, err := standby.AcquireLeadership(ctx, "e2", "s2", ttl); !errors.Is(err, core.ErrNotLeader) {
		t.Fatalf("deposed engine renewing: %v, want ErrNotLeader", err)
	}
	if n := keyCount(t, leader, dirSched); n != 0 {
		t.Fatalf("%d placements written by a deposed engine", n)
	}
}
