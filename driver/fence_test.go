package driver_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/driver"
)

// cutoff is a registry that, once cut, never answers the calls of the
// machine's presence and agent: each blocks until the cut heals (then fails)
// or its context ends, as a partitioned etcd client would.
type cutoff struct {
	core.Registry
	mu     sync.Mutex
	cut    bool
	healed chan struct{}
	hung   map[string]int // calls blocked now, by name
}

func (c *cutoff) block(ctx context.Context, op string) error {
	c.mu.Lock()
	if !c.cut {
		c.mu.Unlock()
		return nil
	}
	c.hung[op]++
	healed := c.healed
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.hung[op]--; c.mu.Unlock() }()
	select {
	case <-healed:
		return core.ErrUnavailable
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cutoff) hanging(op string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hung[op] > 0
}

func (c *cutoff) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut && !cut {
		close(c.healed)
		c.healed = make(chan struct{})
	}
	c.cut = cut
}

func (c *cutoff) Heartbeat(ctx context.Context, m core.MachineState, s string, ttl time.Duration) error {
	if err := c.block(ctx, "Heartbeat"); err != nil {
		return err
	}
	return c.Registry.Heartbeat(ctx, m, s, ttl)
}

func (c *cutoff) MachinePlacements(ctx context.Context, m string) ([]core.Placement, error) {
	if err := c.block(ctx, "MachinePlacements"); err != nil {
		return nil, err
	}
	return c.Registry.MachinePlacements(ctx, m)
}

func (c *cutoff) GlobalUnits(ctx context.Context) ([]core.Unit, error) {
	if err := c.block(ctx, "GlobalUnits"); err != nil {
		return nil, err
	}
	return c.Registry.GlobalUnits(ctx)
}

func (c *cutoff) UnitContents(ctx context.Context, h core.Hash) ([]byte, error) {
	if err := c.block(ctx, "UnitContents"); err != nil {
		return nil, err
	}
	return c.Registry.UnitContents(ctx, h)
}

func (c *cutoff) UnitStates(ctx context.Context) ([]core.UnitState, error) {
	if err := c.block(ctx, "UnitStates"); err != nil {
		return nil, err
	}
	return c.Registry.UnitStates(ctx)
}

func (c *cutoff) PublishUnitStates(ctx context.Context, id, s string, st []core.UnitState, rm []string) error {
	if err := c.block(ctx, "PublishUnitStates"); err != nil {
		return err
	}
	return c.Registry.PublishUnitStates(ctx, id, s, st, rm)
}

// fenceEdges records the fenced passes the driver reports.
type fenceEdges struct {
	fenced atomic.Int32
}

func (*fenceEdges) EnginePass(bool, core.EngineResult, error, time.Duration) {}
func (*fenceEdges) Heartbeat(error)                                          {}
func (f *fenceEdges) AgentPass(res core.AgentResult, _ error, _ time.Duration) {
	if res.Fenced {
		f.fenced.Add(1)
	}
}

// TestFenceDoesNotWaitForAHungRegistry: with self-fencing on, a machine
// whose every registry call hangs stops its units although its agent's pass
// is blocked in the registry (it would never return by itself); once the
// registry answers again the agent unfences and starts its units, still
// scheduled there, again.
func TestFenceDoesNotWaitForAHungRegistry(t *testing.T) {
	const grace = 300 * time.Millisecond // > ttl/3
	mem := memory.New(fakesystemd.WallClock{})
	reg := &cutoff{Registry: mem, healed: make(chan struct{}), hung: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	units := fakesystemd.NewRealTime(fakesystemd.New(fakesystemd.WallClock{}, fakesystemd.WithJobDuration(5*time.Millisecond)))
	done := make(chan struct{})
	go func() { defer close(done); units.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	m := core.MachineState{ID: "m1"}
	agent, err := core.NewAgent(core.AgentConfig{Machine: m, Session: "m1/1", TTL: ttl, ExternalPresence: true, Resync: time.Hour, FenceGrace: grace}, reg, units)
	if err != nil {
		t.Fatal(err)
	}
	obs := &fenceEdges{}
	d, err := driver.Start(ctx, driver.Config{Registry: reg, Units: units, Agent: agent, Machine: m, Session: "m1/1", TTL: ttl, FenceGrace: grace, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = d.Stop(sctx, false)
	})
	// An engine outside the driver places the units once: none runs during
	// the cut, so they stay scheduled on m1.
	engine, err := core.NewEngine(core.EngineConfig{ID: "e", Session: "e/1", LeaseTTL: time.Hour}, mem)
	if err != nil {
		t.Fatal(err)
	}
	place := func(name string) {
		t.Helper()
		s, err := core.PrepareUnit(name, []byte("[Service]\nExecStart=/bin/sleep infinity\n"))
		if err != nil {
			t.Fatal(err)
		}
		s.Unit.TargetState = core.Launched
		if err := mem.CreateUnit(ctx, s.Unit, s.File.Bytes()); err != nil {
			t.Fatal(err)
		}
		if _, err := engine.Reconcile(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	om := &machine{id: "m1", units: units, driver: d}
	place("a.service")
	eventually(t, 5*time.Second, "a active", func() bool { return active(om, "a.service") })

	reg.setCut(true)
	place("b.service") // wakes the agent, whose pass now hangs in the registry
	eventually(t, 5*time.Second, "the agent's pass blocked in the registry", func() bool { return reg.hanging("MachinePlacements") })
	eventually(t, 5*time.Second, "a stopped while every registry call hangs", func() bool { return !active(om, "a.service") })
	if obs.fenced.Load() == 0 {
		t.Error("a stopped without a fenced pass")
	}
	if active(om, "b.service") {
		t.Error("b started while fenced")
	}

	reg.setCut(false)
	eventually(t, 5*time.Second, "a and b running after the registry answers again", func() bool {
		return active(om, "a.service") && active(om, "b.service")
	})
}
