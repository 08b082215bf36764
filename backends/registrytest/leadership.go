package registrytest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

func testLeadershipIsExclusive(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	acquire(t, reg, "e1")
	_, err := reg.AcquireLeadership(ctx, "e2", session("e2"), ttl)
	wantErrIs(t, err, core.ErrNotLeader, "AcquireLeadership(e2) while e1 leads")
}

func testDeposedEngineWritesNothing(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	old := acquire(t, reg, "e1")
	apply(t, reg, old, place("a.service", "m1", core.Launched))
	in.Advance(ttl + ttl/2)
	cur := acquire(t, reg, "e2")
	if cur.Epoch <= old.Epoch {
		t.Fatalf("epoch of the new leader %d is not above the deposed one's %d", cur.Epoch, old.Epoch)
	}

	err := applyErr(t, reg, old,
		place("b.service", "m1", core.Launched),
		unplace("a.service", "m1"),
	)
	wantErrIs(t, err, core.ErrStaleFence, "ApplySchedule with the deposed engine's fence")
	wantEqual(t, placementKeys(listPlacements(t, reg)), "[a.service@m1:launched]", "Placements after the rejected batch")

	_, err = reg.AcquireLeadership(ctx, "e1", session("e1"), ttl)
	wantErrIs(t, err, core.ErrNotLeader, "AcquireLeadership(e1) while e2 leads")
	apply(t, reg, cur, place("b.service", "m2", core.Launched))
	wantEqual(t, placementKeys(listPlacements(t, reg)), "[a.service@m1:launched b.service@m2:launched]", "Placements after the new leader's batch")
}

func testExpiredLeaseFenceIsStale(t *testing.T, in Instance) {
	reg := in.Registry
	fence := acquire(t, reg, "e1")
	in.Advance(ttl + ttl/2)
	err := applyErr(t, reg, fence, place("a.service", "m1", core.Launched))
	wantErrIs(t, err, core.ErrStaleFence, "ApplySchedule after the lease expired")
	wantEqual(t, placementKeys(listPlacements(t, reg)), "[]", "Placements after the rejected batch")
}

func testForeignFenceIsStale(t *testing.T, in Instance) {
	reg := in.Registry
	fence := acquire(t, reg, "e1")
	ops := []core.ScheduleOp{place("a.service", "m1", core.Launched)}
	for _, f := range []core.Fence{
		{Engine: "e2", Session: fence.Session, Epoch: fence.Epoch},
		{Engine: "e1", Session: "e1/2", Epoch: fence.Epoch},
		{Engine: "e1", Session: fence.Session, Epoch: fence.Epoch + 1},
		{Engine: "e1", Session: fence.Session, Epoch: fence.Epoch - 1},
		{},
	} {
		wantErrIs(t, applyErr(t, reg, f, ops...), core.ErrStaleFence, fmt.Sprintf("ApplySchedule with forged fence %+v", f))
	}
	wantEqual(t, placementKeys(listPlacements(t, reg)), "[]", "Placements after the rejected batches")
}

func testEpochsIncreaseAcrossLeaders(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	f1 := acquire(t, reg, "e1")
	if err := reg.ResignLeadership(ctx, f1); err != nil {
		t.Fatalf("ResignLeadership(e1): %v", err)
	}
	f2 := acquire(t, reg, "e2")
	in.Advance(ttl + ttl/2)
	f3 := acquire(t, reg, "e1")
	in.Advance(ttl + ttl/2)
	f4 := acquire(t, reg, "e1") // the same engine again, after its lease expired
	epochs := []int64{f1.Epoch, f2.Epoch, f3.Epoch, f4.Epoch}
	for i := 1; i < len(epochs); i++ {
		if epochs[i] <= epochs[i-1] {
			t.Fatalf("epochs of successive leaderships %v do not strictly increase", epochs)
		}
	}
}

func testRenewalKeepsEpoch(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	first := acquire(t, reg, "e1")
	in.Advance(ttl * 6 / 10)
	renewed := acquire(t, reg, "e1")
	wantEqual(t, renewed, first, "fence after renewal")
	in.Advance(ttl * 6 / 10) // past the first expiry, before the renewed one
	_, err := reg.AcquireLeadership(ctx, "e2", session("e2"), ttl)
	wantErrIs(t, err, core.ErrNotLeader, "AcquireLeadership(e2) after e1 renewed")
	apply(t, reg, first, place("a.service", "m1", core.Launched))
}

func testResignLeadership(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	old := acquire(t, reg, "e1")
	if err := reg.ResignLeadership(ctx, old); err != nil {
		t.Fatalf("ResignLeadership: %v", err)
	}
	cur := acquire(t, reg, "e2") // at once, without waiting for the TTL
	err := applyErr(t, reg, old, place("a.service", "m1", core.Launched))
	wantErrIs(t, err, core.ErrStaleFence, "ApplySchedule with the resigned fence")

	// Resigning a stale fence gives up nothing; it may report the stale fence.
	if err := reg.ResignLeadership(ctx, old); err != nil && !errors.Is(err, core.ErrStaleFence) {
		t.Fatalf("ResignLeadership with a stale fence: got %v, want nil or %v", err, core.ErrStaleFence)
	}
	apply(t, reg, cur, place("b.service", "m1", core.Launched))
	_, err = reg.AcquireLeadership(ctx, "e1", session("e1"), ttl)
	wantErrIs(t, err, core.ErrNotLeader, "AcquireLeadership(e1) after resigning a stale fence")
}

// A second live process with the same machine ID (another session) never shares
// the leader's lease; the same session (a restarted process that kept it) renews
// it with the same epoch.
func testLeadershipIsPerSession(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	first := acquire(t, reg, "e1")
	_, err := reg.AcquireLeadership(ctx, "e1", "e1/2", ttl)
	wantErrIs(t, err, core.ErrNotLeader, "AcquireLeadership(e1) from another session")
	again, err := reg.AcquireLeadership(ctx, "e1", session("e1"), ttl)
	if err != nil {
		t.Fatalf("AcquireLeadership(e1) from the same session: %v", err)
	}
	wantEqual(t, again, first, "fence renewed by the same session")
	in.Advance(ttl + ttl/2)
	second, err := reg.AcquireLeadership(ctx, "e1", "e1/2", ttl)
	if err != nil {
		t.Fatalf("AcquireLeadership(e1) from the other session after expiry: %v", err)
	}
	if second.Epoch <= first.Epoch {
		t.Fatalf("epoch %d of the other session is not above %d", second.Epoch, first.Epoch)
	}
	wantErrIs(t, applyErr(t, reg, first, place("a.service", "m1", core.Launched)), core.ErrStaleFence, "ApplySchedule with the first session's fence")
	apply(t, reg, second, place("a.service", "m1", core.Launched))
}
