package driver_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/driver"
)

const ttl = 600 * time.Millisecond

// machine is one driver with its fake systemd, on a shared registry.
type machine struct {
	id     string
	units  *fakesystemd.RealTime
	driver *driver.Driver
}

// counting wraps a registry and counts calls by name.
type counting struct {
	core.Registry
	mu    sync.Mutex
	calls map[string]int
}

func (c *counting) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
}

func (c *counting) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

func (c *counting) MachinePlacements(ctx context.Context, m string) ([]core.Placement, error) {
	c.count("MachinePlacements")
	return c.Registry.MachinePlacements(ctx, m)
}

func (c *counting) Units(ctx context.Context) ([]core.Unit, error) {
	c.count("Units")
	return c.Registry.Units(ctx)
}

func (c *counting) GlobalUnits(ctx context.Context) ([]core.Unit, error) {
	c.count("GlobalUnits")
	return c.Registry.GlobalUnits(ctx)
}

func (c *counting) PublishUnitStates(ctx context.Context, id, s string, st []core.UnitState, rm []string) error {
	c.count("PublishUnitStates")
	return c.Registry.PublishUnitStates(ctx, id, s, st, rm)
}

func (c *counting) Heartbeat(ctx context.Context, m core.MachineState, s string, ttl time.Duration) error {
	c.count("Heartbeat")
	return c.Registry.Heartbeat(ctx, m, s, ttl)
}

// cluster is n drivers, each with an engine, on one memory registry on the
// wall clock.
type cluster struct {
	t        *testing.T
	reg      *counting
	mem      *memory.Registry
	machines []*machine
	observer driver.Observer // of every driver; none if nil
}

func newCluster(t *testing.T, n int, wrap func(core.UnitManager) core.UnitManager) *cluster {
	return newObservedCluster(t, n, wrap, nil)
}

func newObservedCluster(t *testing.T, n int, wrap func(core.UnitManager) core.UnitManager, obs driver.Observer) *cluster {
	mem := memory.New(fakesystemd.WallClock{})
	c := &cluster{t: t, mem: mem, reg: &counting{Registry: mem, calls: map[string]int{}}, observer: obs}
	for i := range n {
		c.machines = append(c.machines, c.start(fmt.Sprintf("m%d", i+1), wrap))
	}
	return c
}

func (c *cluster) start(id string, wrap func(core.UnitManager) core.UnitManager) *machine {
	t := c.t
	ctx, cancel := context.WithCancel(context.Background())
	units := fakesystemd.NewRealTime(fakesystemd.New(fakesystemd.WallClock{}, fakesystemd.WithJobDuration(5*time.Millisecond)))
	done := make(chan struct{})
	go func() { defer close(done); units.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var um core.UnitManager = units
	if wrap != nil {
		um = wrap(units)
	}
	m := core.MachineState{ID: id}
	session := id + "/1"
	agent, err := core.NewAgent(core.AgentConfig{Machine: m, Session: session, TTL: ttl, ExternalPresence: true, Resync: time.Hour}, c.reg, um)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := core.NewEngine(core.EngineConfig{ID: id, Session: session, LeaseTTL: ttl}, c.reg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := driver.Start(ctx, driver.Config{Registry: c.reg, Units: um, Agent: agent, Engine: engine, Machine: m, Session: session, TTL: ttl, EngineResync: time.Hour, Observer: c.observer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = d.Stop(sctx, false)
	})
	return &machine{id: id, units: units, driver: d}
}

func (c *cluster) submit(name string, state core.JobState) {
	c.t.Helper()
	s, err := core.PrepareUnit(name, []byte("[Service]\nExecStart=/bin/sleep infinity\n"))
	if err != nil {
		c.t.Fatal(err)
	}
	s.Unit.TargetState = state
	if err := c.mem.CreateUnit(context.Background(), s.Unit, s.File.Bytes()); err != nil {
		c.t.Fatal(err)
	}
}

// eventually polls cond until it holds, failing the test after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func active(m *machine, name string) bool {
	us, err := m.units.Units(context.Background())
	if err != nil {
		return false
	}
	for _, u := range us {
		if u.Name == name {
			return u.ActiveState == core.ActiveActive
		}
	}
	return false
}

// launched reports whether name is launched at cluster level and its published
// state says active: the agents have nothing left to do for it.
func launched(c *cluster, name string) bool {
	ps, err1 := c.mem.Placements(context.Background())
	ss, err2 := c.mem.UnitStates(context.Background())
	var mine []core.Placement
	for _, p := range ps {
		if p.Unit == name {
			mine = append(mine, p)
		}
	}
	if err1 != nil || err2 != nil || core.CurrentState(mine, ss) != core.Launched {
		return false
	}
	for _, s := range ss {
		if s.Unit == name && s.Machine == mine[0].Machine {
			return s.ActiveState == core.ActiveActive
		}
	}
	return false
}

func TestDriversRunUnitsAndStopThemWithoutEngine(t *testing.T) {
	c := newCluster(t, 2, nil)
	for i := range 4 {
		c.submit(fmt.Sprintf("u%d.service", i), core.Launched)
	}
	eventually(t, 5*time.Second, "four units launched", func() bool {
		for i := range 4 {
			if !launched(c, fmt.Sprintf("u%d.service", i)) {
				return false
			}
		}
		return true
	})
	onM1 := 0
	for i := range 4 {
		if active(c.machines[0], fmt.Sprintf("u%d.service", i)) {
			onM1++
		}
	}
	if onM1 != 2 {
		t.Errorf("m1 runs %d of 4 units, want 2 (least loaded)", onM1)
	}
	// With both engines gone, a user's stop still reaches the agent.
	for _, m := range c.machines {
		if err := m.driver.SetEngine(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.mem.SetTargetState(context.Background(), "u0.service", core.Loaded); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "u0 stopped with no engine", func() bool {
		return !active(c.machines[0], "u0.service") && !active(c.machines[1], "u0.service")
	})
}

// hung blocks every Units call while blocked is set, as a frozen systemd would.
type hung struct {
	core.UnitManager
	blocked atomic.Bool
	release chan struct{}
}

func (h *hung) Units(ctx context.Context) ([]core.UnitStatus, error) {
	if h.blocked.Load() {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.UnitManager.Units(ctx)
}

// A frozen systemd stalls the agent's pass, never the presence.
func TestPresenceSurvivesAHungUnitManager(t *testing.T) {
	h := &hung{release: make(chan struct{})}
	c := newCluster(t, 1, func(um core.UnitManager) core.UnitManager { h.UnitManager = um; return h })
	c.submit("a.service", core.Launched)
	eventually(t, 5*time.Second, "a launched", func() bool { return launched(c, "a.service") })
	h.blocked.Store(true)
	c.submit("b.service", core.Launched) // wakes the agent, whose pass now hangs
	before := c.reg.snapshot()["Heartbeat"]
	eventually(t, 10*time.Second, "five presence renewals while systemd hangs", func() bool {
		return c.reg.snapshot()["Heartbeat"] >= before+5
	})
	ms, err := c.mem.Machines(context.Background())
	if err != nil || len(ms) != 1 {
		t.Fatalf("machines while systemd hangs: %v %v, want m1 present", ms, err)
	}
	if err := c.machines[0].driver.Healthy(); err != nil {
		t.Errorf("Healthy while systemd hangs: %v", err)
	}
	h.blocked.Store(false)
	close(h.release)
	eventually(t, 5*time.Second, "b launched after systemd recovers", func() bool { return launched(c, "b.service") })
}

// An idle cluster costs presence and lease renewals only: no reads, no writes.
func TestIdleClusterOnlyRenews(t *testing.T) {
	c := newCluster(t, 2, nil)
	for i := range 6 {
		c.submit(fmt.Sprintf("u%d.service", i), core.Launched)
	}
	eventually(t, 5*time.Second, "six units launched", func() bool {
		for i := range 6 {
			if !launched(c, fmt.Sprintf("u%d.service", i)) {
				return false
			}
		}
		return true
	})
	before := c.reg.snapshot()
	beats := before["Heartbeat"]
	eventually(t, 10*time.Second, "six more presence renewals", func() bool { return c.reg.snapshot()["Heartbeat"] >= beats+6 })
	after := c.reg.snapshot()
	for _, op := range []string{"Units", "MachinePlacements", "GlobalUnits", "PublishUnitStates"} {
		if after[op] != before[op] {
			t.Errorf("%s called %d times while idle, want 0", op, after[op]-before[op])
		}
	}
}

// Stop with drain removes the machine's units and leaves; detach leaves both.
func TestStopDrainAndDetach(t *testing.T) {
	c := newCluster(t, 2, nil)
	c.submit("a.service", core.Launched)
	c.submit("b.service", core.Launched)
	eventually(t, 5*time.Second, "a and b launched", func() bool { return launched(c, "a.service") && launched(c, "b.service") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m1, m2 := c.machines[0], c.machines[1]
	if err := m2.driver.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	if us, _ := m2.units.Units(ctx); len(us) != 1 || us[0].ActiveState != core.ActiveActive {
		t.Errorf("m2 after detach runs %+v, want its unit still active", us)
	}
	if err := m1.driver.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	if us, _ := m1.units.Units(ctx); len(us) != 0 {
		t.Errorf("m1 after drain has %+v, want nothing", us)
	}
	ms, err := c.mem.Machines(ctx)
	if err != nil || len(ms) != 1 || ms[0].ID != "m2" {
		t.Errorf("machines after m1 drained and m2 detached: %+v %v, want m2 until its TTL", ms, err)
	}
}

// engineLog records, from every driver, the engine passes that held the lease
// and worked, and the units moved off a machine that went away.
type engineLog struct {
	mu        sync.Mutex
	leading   int
	movedGone []string
	firstMove time.Time // when the first unit moved off a machine gone
}

func (l *engineLog) EnginePass(_ bool, res core.EngineResult, err error, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && res.Leader {
		l.leading++
	}
	for _, d := range res.Decisions {
		if d.Cause == core.CauseMachineGone {
			l.movedGone = append(l.movedGone, d.Unit+" from "+d.From)
			if l.firstMove.IsZero() {
				l.firstMove = time.Now()
			}
		}
	}
}

func (l *engineLog) AgentPass(core.AgentResult, error, time.Duration) {}
func (l *engineLog) Heartbeat(error)                                  {}

func (l *engineLog) read() (leading int, moved []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading, slices.Clone(l.movedGone)
}

// After the registry was out of reach for longer than the TTL (every
// presence lapsed, as etcd expires leases while no one reaches it), the
// engine waits a TTL before planning: a machine that announces itself again
// later than the others (here m2, whose renewals fail a moment longer) keeps
// its units, nothing moves.
func TestEngineWaitsForPresencesAfterAnOutage(t *testing.T) {
	log := &engineLog{}
	c := newObservedCluster(t, 3, nil, log)
	var units []string
	for i := range 6 {
		units = append(units, fmt.Sprintf("u%d.service", i))
		c.submit(units[i], core.Launched)
	}
	eventually(t, 5*time.Second, "six units launched", func() bool {
		for _, u := range units {
			if !launched(c, u) {
				return false
			}
		}
		return true
	})
	before, err := c.mem.Placements(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var down, m2Late atomic.Bool
	down.Store(true)
	m2Late.Store(true)
	c.mem.SetFaults(memory.Faults{Fail: func(op, machine string) error {
		if down.Load() || op == "Heartbeat" && machine == "m2" && m2Late.Load() {
			return core.ErrUnavailable
		}
		return nil
	}})
	eventually(t, 10*time.Second, "every presence lapsed", func() bool {
		for _, m := range c.machines {
			if m.driver.Healthy() == nil {
				return false
			}
		}
		return true
	})
	leading, _ := log.read()
	down.Store(false)
	eventually(t, 10*time.Second, "an engine leading again", func() bool { n, _ := log.read(); return n > leading })
	m2Late.Store(false)
	eventually(t, 10*time.Second, "every machine back", func() bool {
		ms, err := c.mem.Machines(context.Background())
		return err == nil && len(ms) == 3
	})
	c.submit("after.service", core.Launched)
	eventually(t, 10*time.Second, "a unit submitted after the outage launched", func() bool { return launched(c, "after.service") })
	if _, moved := log.read(); len(moved) > 0 {
		t.Errorf("units moved off machines that went away during the outage: %v", moved)
	}
	after, err := c.mem.Placements(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, p := range after {
		where[p.Unit] = p.Machine
	}
	for _, p := range before {
		if where[p.Unit] != p.Machine {
			t.Errorf("%s placed on %s after the outage, was on %s", p.Unit, where[p.Unit], p.Machine)
		}
	}
}

// An engine that starts while units are placed on machines without a
// presence (they lost it in the outage this fleetd restarts from, and may not
// have announced themselves again yet) waits a presence TTL before it moves
// them; machines that never come back are still failed over after that.
func TestFreshEngineWaitsForAbsentMachines(t *testing.T) {
	log := &engineLog{}
	c := newObservedCluster(t, 2, nil, log)
	units := []string{"a.service", "b.service", "c.service", "d.service"}
	for _, u := range units {
		c.submit(u, core.Launched)
	}
	eventually(t, 5*time.Second, "four units launched", func() bool {
		for _, u := range units {
			if !launched(c, u) {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range c.machines {
		if err := m.driver.Stop(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "m1 and m2 gone", func() bool {
		ms, err := c.mem.Machines(ctx)
		return err == nil && len(ms) == 0
	})
	if ps, err := c.mem.Placements(ctx); err != nil || len(ps) != len(units) {
		t.Fatalf("placements after both machines left: %v (%v), want %d", ps, err, len(units))
	}
	started := time.Now()
	c.start("m3", nil)
	eventually(t, 10*time.Second, "every unit placed on m3", func() bool {
		ps, err := c.mem.MachinePlacements(ctx, "m3")
		return err == nil && len(ps) == len(units)
	})
	log.mu.Lock()
	first := log.firstMove
	log.mu.Unlock()
	if waited := first.Sub(started); waited < ttl {
		t.Errorf("the fresh engine moved units off the absent machines %v after it started, want at least a presence TTL (%v)", waited, ttl)
	}
}
