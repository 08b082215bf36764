package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

const (
	fenceTTL   = 5 * time.Second
	fenceGrace = 2 * time.Second
)

// fenceRig is machine m1's agent with self-fencing and an external presence
// renewed by the test, over a registry whose calls can be cut off and
// counted, and a fake systemd; m2 is another machine, present, without an
// agent.
type fenceRig struct {
	*agentRig
	cut   bool // every registry call fails
	calls int  // registry calls made while cut
}

func newFenceRig(t *testing.T) *fenceRig {
	clock := memory.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := memory.New(clock)
	sd := fakesystemd.New(clock)
	agent, err := core.NewAgent(core.AgentConfig{Machine: core.MachineState{ID: "m1"}, Session: "s1", TTL: fenceTTL,
		ExternalPresence: true, FenceGrace: fenceGrace}, reg, sd)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := core.NewEngine(core.EngineConfig{ID: "m2", Session: "s2", LeaseTTL: 10 * time.Second}, reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &fenceRig{agentRig: &agentRig{t: t, ctx: context.Background(), clock: clock, reg: reg, sd: sd, agent: agent, engine: engine}}
	reg.SetFaults(memory.Faults{Fail: func(op, machine string) error {
		if r.cut {
			r.calls++
			return core.ErrUnavailable
		}
		return nil
	}})
	r.renew()
	r.beat("m2", "s2")
	return r
}

// renew renews m1's presence now, as the driver does.
func (r *fenceRig) renew() {
	r.t.Helper()
	r.beat("m1", "s1")
	r.agent.PresenceRenewed(r.clock.Now())
}

func (r *fenceRig) beat(id, session string) {
	r.t.Helper()
	if err := r.reg.Heartbeat(r.ctx, core.MachineState{ID: id}, session, fenceTTL); err != nil {
		r.t.Fatal(err)
	}
}

// startOnM1 submits units pinned to m1 (a cut-off m1's units then stay
// scheduled there) or free to move (the engine places them on m1, the first
// of two empty machines), and checks that they run on m1.
func (r *fenceRig) startOnM1(pinned bool, names ...string) {
	r.t.Helper()
	for _, n := range names {
		body := "[Service]\nExecStart=/bin/sleep infinity\n"
		if pinned {
			body += "[X-Fleet]\nMachineID=m1\n"
		}
		r.submit(n, body)
		r.setTarget(n, core.Launched)
	}
	r.pass()
	r.pass()
	for _, n := range names {
		if s := r.state(n); s != core.ActiveActive {
			r.t.Fatalf("%s is %s, want active on m1", n, s)
		}
	}
}

// fencedPass runs an agent pass at the current time with the registry cut
// off and checks that it fenced without calling the registry.
func (r *fenceRig) fencedPass() core.AgentResult {
	r.t.Helper()
	r.cut, r.calls = true, 0
	res, err := r.agent.Reconcile(r.ctx, r.clock.Now())
	if err != nil {
		r.t.Fatalf("fenced pass: %v", err)
	}
	if !res.Fenced || r.calls != 0 {
		r.t.Fatalf("pass %v after the last renewal: Fenced %v with %d registry calls, want fenced with none", r.agent.Unrenewed(r.clock.Now()), res.Fenced, r.calls)
	}
	r.settle()
	return res
}

// settle advances the clock to each pending job's end until none is left.
func (r *fenceRig) settle() {
	for {
		at, ok := r.sd.NextDeadline()
		if !ok {
			return
		}
		if d := at.Sub(r.clock.Now()); d > 0 {
			r.clock.Advance(d)
		}
		r.sd.Step()
	}
}

// TestAgentFenceWaitsForTheGrace: with the registry cut off, units keep
// running until the grace has passed since the last renewal was sent, then
// every one stops, and while fenced nothing starts.
func TestAgentFenceWaitsForTheGrace(t *testing.T) {
	r := newFenceRig(t)
	r.startOnM1(true, "a.service", "b.service")
	r.renew()
	r.cut = true
	r.clock.Advance(fenceGrace)
	if _, err := r.agent.Reconcile(r.ctx, r.clock.Now()); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("pass at exactly the grace: err %v, want the registry's ErrUnavailable", err)
	}
	r.sd.Step()
	if r.state("a.service") != core.ActiveActive || r.agent.Fenced(r.clock.Now()) {
		t.Fatal("fenced at exactly the grace, want only after it")
	}
	r.clock.Advance(time.Millisecond)
	res := r.fencedPass()
	if got, want := tasks(res), "stop a.service (fenced); stop b.service (fenced)"; got != want {
		t.Errorf("fencing tasks %q, want %q", got, want)
	}
	for _, n := range []string{"a.service", "b.service"} {
		if s := r.state(n); s != core.ActiveInactive {
			t.Errorf("%s is %s once fenced, want inactive", n, s)
		}
	}
	r.clock.Advance(time.Second)
	now := r.clock.Now()
	res = r.fencedPass()
	if len(res.Tasks) != 0 {
		t.Errorf("second fenced pass ran %q, want nothing (no start while fenced)", tasks(res))
	}
	if !res.NextWake.Equal(now.Add(fenceTTL / 3)) {
		t.Errorf("fenced pass wakes at +%v, want +TTL/3", res.NextWake.Sub(now))
	}
}

// TestAgentUnfenceStartsUnitsStillHere: a renewal that succeeds again before
// the presence lapsed unfences the agent, which starts again the units it
// stopped (still scheduled here), each once, and leaves a unit that had
// ended before the fence alone.
func TestAgentUnfenceStartsUnitsStillHere(t *testing.T) {
	r := newFenceRig(t)
	r.startOnM1(true, "a.service", "ended.service")
	if err := r.sd.Stop(r.ctx, "ended.service"); err != nil { // behind fleet's back
		t.Fatal(err)
	}
	r.settle()
	r.renew()
	r.clock.Advance(fenceGrace + time.Millisecond)
	if got := tasks(r.fencedPass()); got != "stop a.service (fenced)" {
		t.Errorf("fencing tasks %q, want the running unit's stop only", got)
	}
	r.clock.Advance(time.Second) // 3 s since the renewal: the presence (5 s) holds
	r.cut = false
	r.renew()
	res, err := r.agent.Reconcile(r.ctx, r.clock.Now())
	if err != nil || res.Fenced {
		t.Fatalf("pass after the renewal: fenced %v, %v", res.Fenced, err)
	}
	if got, want := tasks(res), "start a.service (target launched)"; got != want {
		t.Errorf("unfenced tasks %q, want %q", got, want)
	}
	r.settle()
	if s := r.state("a.service"); s != core.ActiveActive {
		t.Errorf("a.service is %s after unfencing, want active", s)
	}
	if got := tasks(r.pass()); got != "" {
		t.Errorf("next pass ran %q, want nothing", got)
	}
	if s := r.publishedState("a.service"); s != "active/running" {
		t.Errorf("published a.service %s, want active", s)
	}
}

// TestAgentFencedUnitsThatMovedStayStopped: units rescheduled while the
// machine was cut off are not started again when it comes back: the agent
// removes them.
func TestAgentFencedUnitsThatMovedStayStopped(t *testing.T) {
	r := newFenceRig(t)
	r.startOnM1(false, "a.service")
	r.renew()
	r.clock.Advance(fenceGrace + time.Millisecond)
	r.fencedPass()
	r.cut = false
	r.clock.Advance(fenceTTL) // m1's presence lapses; m2 renews its own
	r.beat("m2", "s2")
	r.reg.Expire()
	if _, err := r.engine.Reconcile(r.ctx, r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r.renew()
	res, err := r.agent.Reconcile(r.ctx, r.clock.Now())
	if err != nil || res.Fenced {
		t.Fatalf("pass after the renewal: fenced %v, %v", res.Fenced, err)
	}
	if got, want := tasks(res), "remove a.service (not scheduled here); reload"; got != want {
		t.Errorf("unfenced tasks %q, want %q", got, want)
	}
}

// TestAgentFencesWithItsOwnHeartbeat: without ExternalPresence, the agent's
// own failed renewals count the same way.
func TestAgentFencesWithItsOwnHeartbeat(t *testing.T) {
	clock := memory.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := memory.New(clock)
	sd := fakesystemd.New(clock)
	ag, err := core.NewAgent(core.AgentConfig{Machine: core.MachineState{ID: "m1"}, Session: "s1", TTL: fenceTTL, FenceGrace: fenceGrace}, reg, sd)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ag.Reconcile(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	reg.SetFaults(memory.Faults{Fail: func(string, string) error { return core.ErrUnavailable }})
	clock.Advance(fenceTTL / 3)
	if res, err := ag.Reconcile(ctx, clock.Now()); res.Fenced || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("renewal failed within the grace: fenced %v, %v", res.Fenced, err)
	}
	clock.Advance(fenceGrace)
	res, err := ag.Reconcile(ctx, clock.Now())
	if !res.Fenced || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("renewal failed past the grace: fenced %v, %v; want fenced and the renewal's error", res.Fenced, err)
	}
}

// TestAgentFenceGraceValidated: a grace not longer than the renewal period
// would fence between two renewals.
func TestAgentFenceGraceValidated(t *testing.T) {
	for _, g := range []time.Duration{-time.Second, fenceTTL / 3} {
		_, err := core.NewAgent(core.AgentConfig{Machine: core.MachineState{ID: "m1"}, Session: "s1", TTL: fenceTTL, FenceGrace: g}, memory.New(memory.NewManualClock(time.Time{})), fakesystemd.New(memory.NewManualClock(time.Time{})))
		if err == nil {
			t.Errorf("FenceGrace %v accepted", g)
		}
	}
}
