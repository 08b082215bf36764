package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

// agentRig is one machine's agent over a memory registry and a fake systemd,
// with a leading engine to place units.
type agentRig struct {
	t      *testing.T
	ctx    context.Context
	clock  *memory.ManualClock
	reg    *memory.Registry
	sd     *fakesystemd.Manager
	agent  *core.Agent
	engine *core.Engine
}

func newAgentRig(t *testing.T) *agentRig {
	clock := memory.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := memory.New(clock)
	sd := fakesystemd.New(clock)
	m := core.MachineState{ID: "m1"}
	r := &agentRig{
		t: t, ctx: context.Background(), clock: clock, reg: reg, sd: sd,
		agent:  core.NewAgent(core.AgentConfig{Machine: m, Session: "s1", TTL: 30 * time.Second}, reg, sd),
		engine: core.NewEngine(core.EngineConfig{ID: "m1", LeaseTTL: 10 * time.Second}, reg),
	}
	if _, err := r.agent.Reconcile(r.ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *agentRig) submitStart(name string) {
	r.t.Helper()
	s, err := core.PrepareUnit(name, []byte("[Service]\nExecStart=/bin/sleep infinity\n"))
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.reg.CreateUnit(r.ctx, s.Unit, s.File.Bytes()); err != nil {
		r.t.Fatal(err)
	}
	if err := r.reg.SetTargetState(r.ctx, name, core.Launched); err != nil {
		r.t.Fatal(err)
	}
}

// pass runs an engine pass and an agent pass, then lets jobs finish.
func (r *agentRig) pass() core.AgentResult {
	r.t.Helper()
	if _, err := r.engine.Reconcile(r.ctx, r.clock.Now()); err != nil {
		r.t.Fatal(err)
	}
	res, err := r.agent.Reconcile(r.ctx, r.clock.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	r.clock.Advance(time.Second)
	r.sd.Step()
	return res
}

func (r *agentRig) state(name string) string {
	r.t.Helper()
	us, err := r.sd.Units(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, u := range us {
		if u.Name == name {
			return u.ActiveState
		}
	}
	return "absent"
}

func tasks(res core.AgentResult) string {
	var out []string
	for _, t := range res.Tasks {
		out = append(out, t.String())
	}
	return strings.Join(out, "; ")
}

func TestAgentLoadsAndStartsThenPublishes(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	res := r.pass()
	if got, want := tasks(res), "write a.service (new); reload; start a.service (target launched)"; got != want {
		t.Errorf("tasks = %q, want %q", got, want)
	}
	if s := r.state("a.service"); s != core.ActiveActive {
		t.Fatalf("a.service is %s, want active", s)
	}
	r.pass()
	states, err := r.reg.UnitStates(r.ctx)
	if err != nil || len(states) != 1 || states[0].ActiveState != core.ActiveActive || states[0].Machine != "m1" {
		t.Errorf("published states = %+v, %v", states, err)
	}
}

func TestAgentRestartsUnitStoppedBehindItsBack(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.pass()
	if err := r.sd.StopBehindBack("a.service"); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Second)
	r.sd.Step()
	if s := r.state("a.service"); s != core.ActiveInactive {
		t.Fatalf("after systemctl stop: %s", s)
	}
	if got := tasks(r.pass()); got != "start a.service (target launched)" {
		t.Errorf("tasks = %q, want a start", got)
	}
	if s := r.state("a.service"); s != core.ActiveActive {
		t.Errorf("a.service is %s, want active again", s)
	}
}

func TestAgentBacksOffFailingStarts(t *testing.T) {
	r := newAgentRig(t)
	r.sd.SetFaults(fakesystemd.Faults{StartFails: map[string]bool{"a.service": true}})
	r.submitStart("a.service")
	starts := 0
	for i := 0; i < 40; i++ {
		for _, task := range r.pass().Tasks {
			if task.Kind == core.TaskStart {
				starts++
			}
		}
	}
	// Attempts at 0, then after 1, 2, 4, 8, 16 s: six in 40 s, not forty.
	if starts < 4 || starts > 7 {
		t.Errorf("%d start attempts in 40 s of failing starts, want about 6 (exponential back-off)", starts)
	}
}

func TestAgentKeepsUnitsWhenRegistryUnreachable(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.pass()
	r.reg.SetFaults(memory.Faults{Fail: func(op, machine string) error { return core.ErrUnavailable }})
	r.clock.Advance(time.Minute)
	_, err := r.agent.Reconcile(r.ctx, r.clock.Now())
	if !errors.Is(err, core.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if s := r.state("a.service"); s != core.ActiveActive {
		t.Errorf("a.service is %s while the registry is down, want still active", s)
	}
}

func TestAgentRepublishesAfterPresenceLost(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.pass()
	r.pass()
	r.clock.Advance(time.Minute) // presence and states expire
	r.reg.Expire()
	if states, _ := r.reg.UnitStates(r.ctx); len(states) != 0 {
		t.Fatalf("states survived presence expiry: %+v", states)
	}
	res, err := r.agent.Reconcile(r.ctx, r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 1 {
		t.Errorf("published %d states after presence came back, want 1", res.Published)
	}
}

func TestAgentRemovesUnitsNotScheduledHere(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.pass()
	if err := r.reg.DestroyUnit(r.ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	if got := tasks(r.pass()); got != "remove a.service (not scheduled here); reload" {
		t.Errorf("tasks = %q", got)
	}
	if s := r.state("a.service"); s != "absent" {
		t.Errorf("a.service is %s, want removed", s)
	}
}

func TestAgentRetriesFailedReloadAndHoldsStarts(t *testing.T) {
	r := newAgentRig(t)
	failReload := true
	r.sd.SetFaults(fakesystemd.Faults{CallError: func(op fakesystemd.Op, unit string) error {
		if op == fakesystemd.OpReload && failReload {
			return errors.New("bus error")
		}
		return nil
	}})
	r.submitStart("a.service")
	res := r.pass()
	if got := tasks(res); got != "write a.service (new)" || len(res.Failures) != 1 {
		t.Fatalf("with Reload failing: tasks %q, failures %v; want the write only, the reload failed and no start", got, res.Failures)
	}
	failReload = false
	if got := tasks(r.pass()); got != "reload; start a.service (target launched)" {
		t.Errorf("next pass: tasks %q, want the reload again, then the start", got)
	}
	if s := r.state("a.service"); s != core.ActiveActive {
		t.Errorf("a.service is %s, want active", s)
	}
}
