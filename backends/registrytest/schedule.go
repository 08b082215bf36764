package registrytest

import (
	"fmt"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

func testApplySchedulePlacesSorted(t *testing.T, in Instance) {
	reg := in.Registry
	fence := acquire(t, reg, "e1")
	ops := []core.ScheduleOp{
		place("b.service", "m1", core.Launched),
		place("a.service", "m2", core.Loaded),
		place("c.service", "m1", core.Launched),
		place("a.service", "m1", core.Loaded),
	}
	apply(t, reg, fence, ops...)
	want := []core.Placement{ops[3].Placement, ops[1].Placement, ops[0].Placement, ops[2].Placement}
	wantEqual(t, listPlacements(t, reg), want, "Placements (sorted by unit, then machine)")
}

func testApplyScheduleUpdatesAndUnplaces(t *testing.T, in Instance) {
	reg := in.Registry
	fence := acquire(t, reg, "e1")
	apply(t, reg, fence,
		place("a.service", "m1", core.Loaded),
		place("b.service", "m1", core.Launched),
		place("c.service", "m2", core.Launched))
	updated := place("a.service", "m1", core.Launched)
	updated.Hash = core.HashBytes([]byte("a.service v2"))
	apply(t, reg, fence,
		updated,
		unplace("b.service", "m1"),
		unplace("c.service", "m1"), // c is on m2: nothing to remove
		unplace("never.service", "m3"))
	want := []core.Placement{updated.Placement, place("c.service", "m2", core.Launched).Placement}
	wantEqual(t, listPlacements(t, reg), want, "Placements after update and unplace")
}

func testApplyScheduleLargeBatch(t *testing.T, in Instance) {
	const n = 200 // more than etcd's default of 128 operations per txn
	reg := in.Registry
	fence := acquire(t, reg, "e1")
	ops := make([]core.ScheduleOp, n)
	for i := range ops {
		ops[i] = place(fmt.Sprintf("u%03d.service", i), fmt.Sprintf("m%d", i%7), core.Launched)
	}
	apply(t, reg, fence, ops...)
	got := listPlacements(t, reg)
	if len(got) != n {
		t.Fatalf("Placements after one batch of %d ops: got %d placements", n, len(got))
	}
	for i, p := range got {
		wantEqual(t, p, ops[i].Placement, fmt.Sprintf("placement %d", i))
	}
}

func testMachinePlacementsOnlyThatMachine(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	fence := acquire(t, reg, "e1")
	apply(t, reg, fence,
		place("d.service", "m2", core.Launched),
		place("a.service", "m1", core.Launched),
		place("b.service", "m2", core.Loaded),
		place("c.service", "m3", core.Launched),
		place("a.service", "m2", core.Launched))
	got, err := reg.MachinePlacements(ctx, "m2")
	if err != nil {
		t.Fatalf("MachinePlacements(m2): %v", err)
	}
	wantEqual(t, placementKeys(got), "[a.service@m2:launched b.service@m2:loaded d.service@m2:launched]", "MachinePlacements(m2)")
	wantEqual(t, got[1], place("b.service", "m2", core.Loaded).Placement, "MachinePlacements(m2)[1]")
	none, err := reg.MachinePlacements(ctx, "m9")
	if err != nil {
		t.Fatalf("MachinePlacements(m9): %v", err)
	}
	if len(none) != 0 {
		t.Fatalf("MachinePlacements(m9) of a machine with no placements: got %s", placementKeys(none))
	}
}
