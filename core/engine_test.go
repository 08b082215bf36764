package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

// engineRig is two engines over one memory registry with two live machines.
type engineRig struct {
	t      *testing.T
	ctx    context.Context
	clock  *memory.ManualClock
	reg    *memory.Registry
	e1, e2 *core.Engine
}

const leaseTTL = 10 * time.Second

func newEngineRig(t *testing.T) *engineRig {
	clock := memory.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := memory.New(clock)
	r := &engineRig{t: t, ctx: context.Background(), clock: clock, reg: reg}
	r.e1, r.e2 = r.engine("e1"), r.engine("e2")
	r.heartbeat()
	return r
}

func (r *engineRig) engine(id string) *core.Engine {
	e, err := core.NewEngine(core.EngineConfig{ID: id, Session: id + "/1", LeaseTTL: leaseTTL}, r.reg)
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

func (r *engineRig) heartbeat() {
	for _, m := range []string{"m1", "m2"} {
		if err := r.reg.Heartbeat(r.ctx, core.MachineState{ID: m}, m+"/1", time.Hour); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *engineRig) submit(name string, state core.JobState) {
	r.t.Helper()
	s, err := core.PrepareUnit(name, []byte("[Service]\nExecStart=/bin/sleep infinity\n"))
	if err != nil {
		r.t.Fatal(err)
	}
	s.Unit.TargetState = state
	if err := r.reg.CreateUnit(r.ctx, s.Unit, s.File.Bytes()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *engineRig) pass(e *core.Engine) core.EngineResult {
	r.t.Helper()
	res, err := e.Reconcile(r.ctx, r.clock.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

func (r *engineRig) placements() string {
	r.t.Helper()
	ps, err := r.reg.Placements(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Unit+"@"+p.Machine)
	}
	return strings.Join(out, " ")
}

func decisions(res core.EngineResult) string {
	var out []string
	for _, d := range res.Decisions {
		out = append(out, d.String())
	}
	return strings.Join(out, "; ")
}

func TestEngineNonLeaderDoesNothing(t *testing.T) {
	r := newEngineRig(t)
	r.submit("a.service", core.Launched)
	if res := r.pass(r.e1); !res.Leader || len(res.Decisions) != 1 {
		t.Fatalf("first engine: leader %t, decisions %q", res.Leader, decisions(res))
	}
	r.submit("b.service", core.Launched)
	res := r.pass(r.e2)
	if res.Leader || len(res.Decisions) != 0 || res.Fence != (core.Fence{}) {
		t.Fatalf("second engine while the first leads: %+v", res)
	}
	if got := r.placements(); got != "a.service@m1" {
		t.Errorf("placements after the standby's pass = %q, want only a", got)
	}
	if !res.NextWake.Equal(r.clock.Now().Add(leaseTTL / 3)) {
		t.Errorf("standby wakes at %v, want in TTL/3", res.NextWake)
	}
}

func TestEngineResignHandsOver(t *testing.T) {
	r := newEngineRig(t)
	r.submit("a.service", core.Launched)
	first := r.pass(r.e1)
	if err := r.e1.Resign(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.e1.Resign(r.ctx); err != nil {
		t.Fatalf("second Resign: %v", err)
	}
	r.submit("b.service", core.Launched)
	res := r.pass(r.e2)
	if !res.Leader || res.Fence.Epoch <= first.Fence.Epoch {
		t.Fatalf("after resign the other engine leads with %+v, want an epoch above %d", res.Fence, first.Fence.Epoch)
	}
	if got := decisions(res); got != "schedule b.service to m2" {
		t.Errorf("new leader's decisions %q", got)
	}
}

// An engine whose lease expired between passes is deposed: its next pass does
// not lead and reports no fence, and the new leader's epoch is higher.
func TestEngineLosesLeaseBetweenPasses(t *testing.T) {
	r := newEngineRig(t)
	old := r.pass(r.e1)
	r.clock.Advance(2 * leaseTTL)
	r.heartbeat()
	cur := r.pass(r.e2)
	if !cur.Leader || cur.Fence.Epoch <= old.Fence.Epoch {
		t.Fatalf("e2 after e1's lease expired: %+v", cur)
	}
	if res := r.pass(r.e1); res.Leader || res.Fence != (core.Fence{}) {
		t.Fatalf("deposed e1 reports %+v, want not leading and no fence", res)
	}
}

// A write refused with a stale fence reports no decisions and no leadership.
func TestEngineStaleWriteReportsNothing(t *testing.T) {
	r := newEngineRig(t)
	r.pass(r.e1)
	r.submit("a.service", core.Launched)
	var deposed bool
	r.reg.SetFaults(memory.Faults{Fail: func(op, machine string) error {
		if op == "ApplySchedule" && !deposed {
			deposed = true
			// The lease expires between the snapshot and the write.
			r.clock.Advance(2 * leaseTTL)
			r.heartbeat()
			if _, err := r.reg.AcquireLeadership(r.ctx, "e2", "e2/1", leaseTTL); err != nil {
				return err
			}
		}
		return nil
	}})
	res, err := r.e1.Reconcile(r.ctx, r.clock.Now())
	if !errors.Is(err, core.ErrStaleFence) {
		t.Fatalf("err = %v, want ErrStaleFence", err)
	}
	if res.Leader || len(res.Decisions) != 0 {
		t.Errorf("deposed pass reports leader %t and decisions %q, want neither", res.Leader, decisions(res))
	}
	if got := r.placements(); got != "" {
		t.Errorf("placements = %q, want none", got)
	}
}

// A place planned from a unit that changed before the write is skipped, and
// the pass does not report it; the next pass places from the new version.
func TestEngineSkipsPlacesOfChangedUnits(t *testing.T) {
	r := newEngineRig(t)
	r.submit("a.service", core.Launched)
	r.submit("b.service", core.Launched)
	changed := false
	r.reg.SetFaults(memory.Faults{Fail: func(op, machine string) error {
		if op == "ApplySchedule" && !changed {
			changed = true
			return r.reg.SetTargetState(r.ctx, "a.service", core.Loaded)
		}
		return nil
	}})
	res := r.pass(r.e1)
	if got := decisions(res); got != "schedule b.service to m2" {
		t.Fatalf("decisions %q, want only b's (a changed while planning)", got)
	}
	res = r.pass(r.e1)
	if got := decisions(res); got != "schedule a.service to m1" {
		t.Fatalf("next pass decisions %q, want a placed", got)
	}
	ps, err := r.reg.Placements(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].Unit != "a.service" || ps[0].TargetState != core.Loaded {
		t.Errorf("a placed as %+v, want target loaded (the user's change)", ps[0])
	}
}

func TestConfigsAreValidated(t *testing.T) {
	reg := memory.New(memory.NewManualClock(time.Unix(0, 0)))
	for _, c := range []struct {
		cfg  core.EngineConfig
		want string
	}{
		{core.EngineConfig{Session: "s", LeaseTTL: time.Second}, "ID"},
		{core.EngineConfig{ID: "e", LeaseTTL: time.Second}, "Session"},
		{core.EngineConfig{ID: "e", Session: "s"}, "LeaseTTL"},
	} {
		if _, err := core.NewEngine(c.cfg, reg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewEngine(%+v) = %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
	m := core.MachineState{ID: "m1"}
	for _, c := range []struct {
		cfg  core.AgentConfig
		want string
	}{
		{core.AgentConfig{Session: "s", TTL: time.Second}, "Machine.ID"},
		{core.AgentConfig{Machine: m, TTL: time.Second}, "Session"},
		{core.AgentConfig{Machine: m, Session: "s"}, "TTL"},
		{core.AgentConfig{Machine: m, Session: "s", TTL: time.Second, Resync: -1}, "Resync"},
		{core.AgentConfig{Machine: m, Session: "s", TTL: time.Second, MaxStartBackoff: -1}, "MaxStartBackoff"},
	} {
		if _, err := core.NewAgent(c.cfg, reg, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewAgent(%+v) = %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
}

// KeepLease renews without reading and says when leadership changed hands.
func TestEngineKeepLease(t *testing.T) {
	r := newEngineRig(t)
	reads := 0
	r.reg.SetFaults(memory.Faults{Fail: func(op, machine string) error {
		if op == "Units" || op == "Placements" || op == "Machines" {
			reads++
		}
		return nil
	}})
	res, changed, err := r.e1.KeepLease(r.ctx, r.clock.Now())
	if err != nil || !res.Leader || !changed {
		t.Fatalf("first KeepLease: %+v changed %t err %v, want leading and changed", res, changed, err)
	}
	if _, changed, err = r.e1.KeepLease(r.ctx, r.clock.Now()); err != nil || changed {
		t.Fatalf("renewal: changed %t err %v, want unchanged", changed, err)
	}
	if res, changed, err = r.e2.KeepLease(r.ctx, r.clock.Now()); err != nil || res.Leader || changed {
		t.Fatalf("standby: %+v changed %t err %v", res, changed, err)
	}
	r.clock.Advance(2 * leaseTTL)
	if res, changed, err = r.e2.KeepLease(r.ctx, r.clock.Now()); err != nil || !res.Leader || !changed {
		t.Fatalf("standby after expiry: %+v changed %t err %v, want leading and changed", res, changed, err)
	}
	if _, changed, _ = r.e1.KeepLease(r.ctx, r.clock.Now()); !changed {
		t.Fatal("deposed engine: want changed (leadership lost)")
	}
	if reads != 0 {
		t.Errorf("KeepLease read the cluster %d times, want never", reads)
	}
}
