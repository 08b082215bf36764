package registrytest

import (
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

func testRevisionsChangeWithEachWrite(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	createUnit(t, reg, "a.service", false)
	createUnit(t, reg, "b.service", false)
	r1 := revisionOf(t, reg, "a.service")
	if err := reg.SetTargetState(ctx, "a.service", core.Launched); err != nil {
		t.Fatalf("SetTargetState: %v", err)
	}
	r2 := revisionOf(t, reg, "a.service")
	if r2 <= r1 {
		t.Fatalf("revision after SetTargetState %d, want above %d", r2, r1)
	}
	if err := reg.SetTargetState(ctx, "b.service", core.Launched); err != nil {
		t.Fatalf("SetTargetState(b): %v", err)
	}
	wantEqual(t, revisionOf(t, reg, "a.service"), r2, "a's revision after a write to b")
	u, contents := newUnit("a.service", false, "v2")
	if err := reg.ReplaceUnit(ctx, u, contents); err != nil {
		t.Fatalf("ReplaceUnit: %v", err)
	}
	if r3 := revisionOf(t, reg, "a.service"); r3 <= r2 {
		t.Fatalf("revision after ReplaceUnit %d, want above %d", r3, r2)
	}
}

func testSetTargetStateMirrorsPlacements(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	a := createUnit(t, reg, "a.service", false)
	fence := acquire(t, reg, "e1")
	p := place("a.service", "m1", core.Launched)
	p.Hash = a.Hash
	apply(t, reg, fence, p)
	if err := reg.SetTargetState(ctx, "a.service", core.Loaded); err != nil {
		t.Fatalf("SetTargetState: %v", err)
	}
	want := []core.Placement{{Unit: "a.service", Machine: "m1", Hash: a.Hash, TargetState: core.Loaded, UnitRevision: revisionOf(t, reg, "a.service")}}
	wantEqual(t, listPlacements(t, reg), want, "Placements after SetTargetState")
	got, err := reg.MachinePlacements(ctx, "m1")
	if err != nil {
		t.Fatalf("MachinePlacements: %v", err)
	}
	wantEqual(t, got, want, "MachinePlacements(m1) after SetTargetState")
}

func testReplaceUnit(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	old := createUnit(t, reg, "a.service", false)
	fence := acquire(t, reg, "e1")
	p := place("a.service", "m1", core.Launched)
	p.Hash = old.Hash
	apply(t, reg, fence, p)

	u, contents := newUnit("a.service", false, "v2")
	u.TargetState = core.Loaded
	if err := reg.ReplaceUnit(ctx, u, contents); err != nil {
		t.Fatalf("ReplaceUnit: %v", err)
	}
	wantEqual(t, listUnits(t, reg), []core.Unit{u}, "Units after ReplaceUnit")
	got, err := reg.UnitContents(ctx, u.Hash)
	if err != nil {
		t.Fatalf("UnitContents(new hash): %v", err)
	}
	wantEqual(t, string(got), string(contents), "contents after ReplaceUnit")
	want := []core.Placement{{Unit: "a.service", Machine: "m1", Hash: u.Hash, TargetState: core.Loaded, UnitRevision: revisionOf(t, reg, "a.service")}}
	wantEqual(t, listPlacements(t, reg), want, "Placements after ReplaceUnit")

	missing, missingContents := newUnit("never.service", false, "v1")
	wantErrIs(t, reg.ReplaceUnit(ctx, missing, missingContents), core.ErrUnitNotFound, "ReplaceUnit(never.service)")
	wantEqual(t, unitNames(listUnits(t, reg)), "[a.service]", "Units after the rejected replace")
}

func testReplaceUnitGlobalFlag(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	createUnit(t, reg, "a.service", false)
	createUnit(t, reg, "g.service", true)
	toGlobal, c1 := newUnit("a.service", true, "v2")
	toLocal, c2 := newUnit("g.service", false, "v2")
	for _, r := range []struct {
		u core.Unit
		c []byte
	}{{toGlobal, c1}, {toLocal, c2}} {
		if err := reg.ReplaceUnit(ctx, r.u, r.c); err != nil {
			t.Fatalf("ReplaceUnit(%s): %v", r.u.Name, err)
		}
	}
	wantEqual(t, listUnits(t, reg), []core.Unit{toGlobal, toLocal}, "Units after swapping Global")
	wantEqual(t, listGlobalUnits(t, reg), []core.Unit{toGlobal}, "GlobalUnits after swapping Global")
}

func testApplyScheduleSkipsStalePlaces(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	for _, n := range []string{"a.service", "b.service", "c.service", "d.service"} {
		createUnit(t, reg, n, n == "d.service")
	}
	fence := acquire(t, reg, "e1")
	planned := map[string]int64{}
	for _, n := range []string{"a.service", "b.service", "c.service", "d.service"} {
		planned[n] = revisionOf(t, reg, n)
	}
	apply(t, reg, fence, place("c.service", "m2", core.Launched))
	// After the plan: a's target changes, c is destroyed.
	if err := reg.SetTargetState(ctx, "a.service", core.Launched); err != nil {
		t.Fatalf("SetTargetState: %v", err)
	}
	if err := reg.DestroyUnit(ctx, "c.service"); err != nil {
		t.Fatalf("DestroyUnit: %v", err)
	}
	conditional := func(unit, machine string) core.ScheduleOp {
		op := place(unit, machine, core.Loaded)
		op.UnitRevision = planned[unit]
		return op
	}
	skipped, err := reg.ApplySchedule(ctx, fence, []core.ScheduleOp{
		conditional("a.service", "m1"),
		conditional("b.service", "m1"),
		unplace("c.service", "m2"),
		conditional("c.service", "m1"),
		conditional("d.service", "m1"), // global: never placed
	})
	if err != nil {
		t.Fatalf("ApplySchedule: %v", err)
	}
	wantEqual(t, skipped, []string{"a.service", "c.service", "d.service"}, "skipped units")
	wantEqual(t, placementKeys(listPlacements(t, reg)), "[b.service@m1:loaded]", "Placements after the batch")
}
