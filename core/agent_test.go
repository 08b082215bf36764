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
	agent, err := core.NewAgent(core.AgentConfig{Machine: m, Session: "s1", TTL: 30 * time.Second}, reg, sd)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := core.NewEngine(core.EngineConfig{ID: "m1", Session: "s1", LeaseTTL: 10 * time.Second}, reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &agentRig{t: t, ctx: context.Background(), clock: clock, reg: reg, sd: sd, agent: agent, engine: engine}
	if _, err := r.agent.Reconcile(r.ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *agentRig) submitStart(name string) {
	r.t.Helper()
	r.submit(name, "[Service]\nExecStart=/bin/sleep infinity\n")
	r.setTarget(name, core.Launched)
}

func (r *agentRig) submit(name, contents string) {
	r.t.Helper()
	s, err := core.PrepareUnit(name, []byte(contents))
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.reg.CreateUnit(r.ctx, s.Unit, s.File.Bytes()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *agentRig) setTarget(name string, state core.JobState) {
	r.t.Helper()
	if err := r.reg.SetTargetState(r.ctx, name, state); err != nil {
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

// A unit stopped behind fleet's back ran and ended for its current revision:
// the agent leaves it alone until the user asks for a start again.
func TestAgentLeavesUnitStoppedBehindItsBack(t *testing.T) {
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
	for range 10 {
		if got := tasks(r.pass()); got != "" {
			t.Fatalf("tasks = %q after a stop behind fleet's back, want none", got)
		}
	}
	r.setTarget("a.service", core.Loaded)
	r.setTarget("a.service", core.Launched)
	if got := tasks(r.pass()); got != "start a.service (target launched)" {
		t.Errorf("tasks = %q after the user's stop and start, want a start", got)
	}
	if s := r.state("a.service"); s != core.ActiveActive {
		t.Errorf("a.service is %s, want active again", s)
	}
}

// A unit that exits (a oneshot job) is started once per revision, whether it
// succeeds or fails: re-running it is systemd's job (Restart=).
func TestAgentStartsEndingUnitsOnce(t *testing.T) {
	r := newAgentRig(t)
	r.sd.SetFaults(fakesystemd.Faults{StartFails: map[string]bool{"b.service": true}})
	r.submit("a.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	r.setTarget("a.service", core.Launched)
	r.submitStart("b.service")
	starts := map[string]int{}
	for range 40 {
		for _, task := range r.pass().Tasks {
			if task.Kind == core.TaskStart {
				starts[task.Unit]++
			}
		}
	}
	if starts["a.service"] != 1 || starts["b.service"] != 1 {
		t.Errorf("starts in 40 s = %v, want one each (a exits, b's start job fails)", starts)
	}
	if s := r.state("b.service"); s != core.ActiveFailed {
		t.Errorf("b.service is %s, want failed", s)
	}
}

// A launched unit is started once per revision and manager instance: one that
// ran and ended is left alone on the manager that ran it, but started again
// when a new manager replaces that one (every unit stopped with the old).
func TestAgentStartsUnitsAgainOnNewManager(t *testing.T) {
	r := newAgentRig(t)
	r.submit("a.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	r.setTarget("a.service", core.Launched)
	r.submitStart("b.service")
	r.pass()
	r.pass()
	if s := r.state("a.service"); s != core.ActiveInactive {
		t.Fatalf("a.service is %s, want inactive (it exited)", s)
	}
	if got := tasks(r.pass()); got != "" {
		t.Fatalf("tasks = %q for a unit that ran and ended, want none", got)
	}
	before := r.sd.Instance()
	r.sd.Restart()
	if r.sd.Instance() == before {
		t.Fatalf("Instance() = %q after Restart, unchanged", before)
	}
	if s := r.state("b.service"); s != core.ActiveInactive {
		t.Fatalf("b.service is %s after the manager restarted, want inactive", s)
	}
	want := "start a.service (target launched); start b.service (target launched)"
	if got := tasks(r.pass()); got != want {
		t.Fatalf("tasks = %q on a new manager, want %q", got, want)
	}
	if s := r.state("b.service"); s != core.ActiveActive {
		t.Errorf("b.service is %s, want active again", s)
	}
	for range 5 {
		if got := tasks(r.pass()); got != "" {
			t.Fatalf("tasks = %q on the same new manager, want none (a ran and ended again)", got)
		}
	}
}

// A start that systemd refuses is retried with exponential back-off.
func TestAgentBacksOffRefusedStarts(t *testing.T) {
	r := newAgentRig(t)
	r.sd.SetFaults(fakesystemd.Faults{CallError: func(op fakesystemd.Op, unit string) error {
		if op == fakesystemd.OpStart && unit == "a.service" {
			return errors.New("start refused")
		}
		return nil
	}})
	r.submitStart("a.service")
	starts := 0
	for range 40 {
		for _, f := range r.pass().Failures {
			if f.Task.Kind == core.TaskStart {
				starts++
			}
		}
	}
	// Attempts at 0, then after 1, 2, 4, 8, 16 s: six in 40 s, not forty.
	if starts < 4 || starts > 7 {
		t.Errorf("%d start attempts in 40 s of refused starts, want about 6 (exponential back-off)", starts)
	}
}

// Stop/start cycles by the user never inherit a back-off: each start request is
// a new revision, started at once.
func TestAgentUserCyclesStartAtOnce(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.pass()
	for i := range 10 {
		r.setTarget("a.service", core.Loaded)
		if got := tasks(r.pass()); got != "stop a.service (target loaded)" {
			t.Fatalf("cycle %d: stop pass tasks %q", i, got)
		}
		r.setTarget("a.service", core.Launched)
		if got := tasks(r.pass()); got != "start a.service (target launched)" {
			t.Fatalf("cycle %d: start pass tasks %q, want an immediate start", i, got)
		}
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

// New contents for a launched unit: the old file goes, the new one is written
// and started, in one pass.
func TestAgentReplacesChangedContents(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.pass()
	s, err := core.PrepareUnit("a.service", []byte("[Service]\nExecStart=/bin/sleep 1000\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.Unit.TargetState = core.Launched
	if err := r.reg.ReplaceUnit(r.ctx, s.Unit, s.File.Bytes()); err != nil {
		t.Fatal(err)
	}
	want := "remove a.service (contents changed); write a.service (contents changed); reload; start a.service (target launched)"
	if got := tasks(r.pass()); got != want {
		t.Errorf("tasks = %q, want %q", got, want)
	}
	us, err := r.sd.Units(r.ctx)
	if err != nil || len(us) != 1 || us[0].Hash != s.Unit.Hash || us[0].ActiveState != core.ActiveActive {
		t.Errorf("systemd has %+v (%v), want a.service active with the new contents", us, err)
	}
}

// A user's stop reaches the agent through the placement without any engine
// pass, and the published state stops saying launched.
func TestAgentStopsWithoutEngine(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.pass()
	r.pass()
	r.setTarget("a.service", core.Loaded)
	res, err := r.agent.Reconcile(r.ctx, r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := tasks(res); got != "stop a.service (target loaded)" {
		t.Fatalf("tasks = %q, want the stop", got)
	}
	r.clock.Advance(time.Second)
	r.sd.Step()
	if _, err := r.agent.Reconcile(r.ctx, r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	states, err := r.reg.UnitStates(r.ctx)
	if err != nil || len(states) != 1 || states[0].Launched || states[0].ActiveState != core.ActiveInactive {
		t.Errorf("published %+v (%v), want a.service inactive and not launched", states, err)
	}
}

// Purge removes every unit fleet runs here and leaves the cluster at once.
func TestAgentPurge(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.submitStart("b.service")
	r.pass()
	if err := r.agent.Purge(r.ctx); err != nil {
		t.Fatal(err)
	}
	if us, err := r.sd.Units(r.ctx); err != nil || len(us) != 0 {
		t.Errorf("systemd still has %+v (%v) after Purge", us, err)
	}
	if ms, err := r.reg.Machines(r.ctx); err != nil || len(ms) != 0 {
		t.Errorf("machines after Purge = %+v (%v), want none", ms, err)
	}
	if ss, err := r.reg.UnitStates(r.ctx); err != nil || len(ss) != 0 {
		t.Errorf("states after Purge = %+v (%v), want none", ss, err)
	}
}

// The published state says launched once the agent started the unit, and
// keeps saying it after a oneshot ended, as fleet's launched marker does.
func TestAgentPublishesLaunched(t *testing.T) {
	r := newAgentRig(t)
	r.submit("a.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	r.setTarget("a.service", core.Launched)
	for range 5 {
		r.pass()
	}
	states, err := r.reg.UnitStates(r.ctx)
	if err != nil || len(states) != 1 || !states[0].Launched || states[0].ActiveState == core.ActiveActive {
		t.Fatalf("published %+v (%v), want a.service ended and launched", states, err)
	}
	ps, err := r.reg.Placements(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := core.CurrentState(ps, states); got != core.Launched {
		t.Errorf("CurrentState = %s, want launched", got)
	}
}

// With ExternalPresence the agent never renews the presence itself; after the
// driver renews a lapsed presence and calls Republish, every state is
// published again.
func TestAgentExternalPresence(t *testing.T) {
	clock := memory.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := memory.New(clock)
	sd := fakesystemd.New(clock)
	m := core.MachineState{ID: "m1"}
	ag, err := core.NewAgent(core.AgentConfig{Machine: m, Session: "s1", TTL: 30 * time.Second, ExternalPresence: true}, reg, sd)
	if err != nil {
		t.Fatal(err)
	}
	beats := 0
	reg.SetFaults(memory.Faults{Fail: func(op, machine string) error {
		if op == "Heartbeat" {
			beats++
		}
		return nil
	}})
	ctx := context.Background()
	if err := reg.Heartbeat(ctx, m, "s1", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	s, err := core.PrepareUnit("g.service", []byte("[Service]\nExecStart=/bin/sleep infinity\n[X-Fleet]\nGlobal=true\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.Unit.TargetState = core.Launched
	if err := reg.CreateUnit(ctx, s.Unit, s.File.Bytes()); err != nil {
		t.Fatal(err)
	}
	res, err := ag.Reconcile(ctx, clock.Now())
	if err != nil || res.Published != 1 {
		t.Fatalf("first pass: published %d, %v", res.Published, err)
	}
	if !res.NextWake.Equal(clock.Now().Add(time.Minute)) {
		t.Errorf("NextWake %v, want the resync only (no heartbeat timer)", res.NextWake.Sub(clock.Now()))
	}
	clock.Advance(time.Minute) // the presence lapses with its states
	reg.Expire()
	if err := reg.Heartbeat(ctx, m, "s1", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	ag.Republish()
	res, err = ag.Reconcile(ctx, clock.Now())
	if err != nil || res.Published != 1 {
		t.Fatalf("after Republish: published %d, %v, want 1", res.Published, err)
	}
	if beats != 2 {
		t.Errorf("%d heartbeats, want only the driver's 2", beats)
	}
}

// publishedState is the state the registry holds for unit on m1, or "absent".
func (r *agentRig) publishedState(unit string) string {
	r.t.Helper()
	all, err := r.reg.UnitStates(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range all {
		if s.Unit == unit && s.Machine == "m1" {
			return s.ActiveState + "/" + s.SubState
		}
	}
	return "absent"
}

// A restarted agent deletes a state an earlier run left for a unit that is no
// longer on the machine.
func TestAgentRestartDeletesStaleStates(t *testing.T) {
	r := newAgentRig(t)
	stale := core.UnitState{Unit: "gone.service", Machine: "m1", Hash: core.HashBytes([]byte("x")), LoadState: "loaded", ActiveState: "active", SubState: "running"}
	if err := r.reg.PublishUnitStates(r.ctx, "m1", "s1", []core.UnitState{stale}, nil); err != nil {
		t.Fatal(err)
	}
	agent, err := core.NewAgent(core.AgentConfig{Machine: core.MachineState{ID: "m1"}, Session: "s1", TTL: 30 * time.Second}, r.reg, r.sd)
	if err != nil {
		t.Fatal(err)
	}
	r.agent = agent
	r.pass()
	if got := r.publishedState("gone.service"); got != "absent" {
		t.Errorf("state of a unit not on the machine after a restart: %s, want absent", got)
	}
}

// After a publish whose reply was lost, the agent does not trust its record of
// what it published: a state that went back to what it remembers is written
// again.
func TestAgentResyncsAfterLostPublishReply(t *testing.T) {
	r := newAgentRig(t)
	r.submitStart("a.service")
	r.pass()
	r.pass()
	if got := r.publishedState("a.service"); got != "active/running" {
		t.Fatalf("published %s, want active/running", got)
	}
	if err := r.sd.StopBehindBack("a.service"); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Second)
	r.sd.Step()
	r.reg.SetFaults(memory.Faults{LoseReply: func(op, _ string) error {
		if op == "PublishUnitStates" {
			return core.ErrUnavailable
		}
		return nil
	}})
	if _, err := r.agent.Reconcile(r.ctx, r.clock.Now()); err == nil {
		t.Fatal("publish with a lost reply: no error")
	}
	r.reg.SetFaults(memory.Faults{})
	if got := r.publishedState("a.service"); got != "inactive/dead" {
		t.Fatalf("published %s after the lost reply, want inactive/dead (applied)", got)
	}
	if err := r.sd.Start(r.ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Second)
	r.sd.Step()
	r.pass()
	if got := r.publishedState("a.service"); got != "active/running" {
		t.Errorf("published %s after the unit ran again, want active/running", got)
	}
}
