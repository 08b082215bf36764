package registrytest

import (
	"context"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// subscribe returns a settled Notify channel for scope, live until the test ends.
func subscribe(t *testing.T, reg core.Registry, scope core.Scope) <-chan struct{} {
	t.Helper()
	ch := reg.Notify(t.Context(), scope)
	settle(t, ch)
	return ch
}

var engineScope = core.Scope{}

func testNotifyEngineOnUnitCreate(t *testing.T, in Instance) {
	ch := subscribe(t, in.Registry, engineScope)
	createUnit(t, in.Registry, "a.service", false)
	expectWake(t, ch, "CreateUnit")
}

func testNotifyEngineOnTargetState(t *testing.T, in Instance) {
	reg := in.Registry
	createUnit(t, reg, "a.service", false)
	ch := subscribe(t, reg, engineScope)
	if err := reg.SetTargetState(t.Context(), "a.service", core.Launched); err != nil {
		t.Fatalf("SetTargetState: %v", err)
	}
	expectWake(t, ch, "SetTargetState")
}

func testNotifyEngineOnMachineJoin(t *testing.T, in Instance) {
	ch := subscribe(t, in.Registry, engineScope)
	heartbeat(t, in.Registry, "m1", "s1")
	expectWake(t, ch, "the first Heartbeat of m1")
}

func testNotifyEngineOnMachineExpiry(t *testing.T, in Instance) {
	reg := in.Registry
	heartbeat(t, reg, "m1", "s1")
	ch := subscribe(t, reg, engineScope)
	in.Advance(ttl + ttl/2)
	expectWake(t, ch, "m1's presence expired (no call made since Advance)")
}

func testNotifyMachineOnPlacement(t *testing.T, in Instance) {
	reg := in.Registry
	fence := acquire(t, reg, "e1")
	ch := subscribe(t, reg, core.Scope{Machine: "m1"})
	apply(t, reg, fence, place("a.service", "m1", core.Launched))
	expectWake(t, ch, "a placement on m1")
}

func testNotifyMachineOnGlobalUnit(t *testing.T, in Instance) {
	ch := subscribe(t, in.Registry, core.Scope{Machine: "m1"})
	createUnit(t, in.Registry, "g.service", true)
	expectWake(t, ch, "CreateUnit of a global unit")
}

func testNotifyMachineNotOnOtherPlacement(t *testing.T, in Instance) {
	reg := in.Registry
	fence := acquire(t, reg, "e1")
	mine := subscribe(t, reg, core.Scope{Machine: "m1"})
	other := subscribe(t, reg, core.Scope{Machine: "m2"})
	apply(t, reg, fence, place("a.service", "m2", core.Launched))
	expectWake(t, other, "a placement on m2, in m2's scope")
	expectNoWake(t, mine, "a placement on m2, in m1's scope")
}

func testNotifyClosedOnCancel(t *testing.T, in Instance) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := in.Registry.Notify(ctx, core.Scope{Machine: "m1"})
	if c := cap(ch); c != 1 {
		t.Fatalf("Notify channel capacity %d, want 1", c)
	}
	cancel()
	deadline := time.NewTimer(wakeWait)
	defer deadline.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline.C:
			t.Fatalf("Notify channel not closed within %v of cancelling its context", wakeWait)
		}
	}
}

// A user's change of target state reaches the machine the unit is placed on
// directly (the placement mirrors it), without an engine pass.
func testNotifyMachineOnTargetState(t *testing.T, in Instance) {
	reg := in.Registry
	createUnit(t, reg, "a.service", false)
	fence := acquire(t, reg, "e1")
	apply(t, reg, fence, place("a.service", "m1", core.Launched))
	ch := subscribe(t, reg, core.Scope{Machine: "m1"})
	other := subscribe(t, reg, core.Scope{Machine: "m2"})
	if err := reg.SetTargetState(t.Context(), "a.service", core.Loaded); err != nil {
		t.Fatalf("SetTargetState: %v", err)
	}
	expectWake(t, ch, "SetTargetState of a unit placed on m1")
	expectNoWake(t, other, "SetTargetState of a unit placed on m1")
}
