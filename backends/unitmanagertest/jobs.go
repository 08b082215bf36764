package unitmanagertest

import (
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

// Tests of jobs: start, stop, failure and removal.

func testStart(t *testing.T, inst Instance) {
	const name = "fleet-conformance-start.service"
	installAndStart(t, inst, name, sleeper)
	// Starting a running unit is accepted and changes nothing.
	start(t, inst.Manager, name)
	inst.Settle()
	if s, _ := find(t, inst, name); s.ActiveState != core.ActiveActive || s.SubState != "running" {
		t.Fatalf("%s: after a second Start = %s, want loaded/active/running", name, describe(s))
	}
}

func testStop(t *testing.T, inst Instance) {
	const name = "fleet-conformance-stop.service"
	installAndStart(t, inst, name, sleeper)
	stop(t, inst.Manager, name)
	s := waitState(t, inst, name, core.ActiveInactive, "dead")
	if s.Hash != core.HashBytes(sleeper) {
		t.Fatalf("%s: hash after Stop = %q, want %q", name, s.Hash, core.HashBytes(sleeper))
	}
	// A stopped unit starts again.
	start(t, inst.Manager, name)
	waitState(t, inst, name, core.ActiveActive, "running")
}

func testStopInactive(t *testing.T, inst Instance) {
	const name = "fleet-conformance-stop-inactive.service"
	install(t, inst, name, sleeper)
	waitState(t, inst, name, core.ActiveInactive, "dead")
	stop(t, inst.Manager, name)
	inst.Settle()
	if s, _ := find(t, inst, name); s.LoadState != core.LoadLoaded || s.ActiveState != core.ActiveInactive {
		t.Fatalf("%s: after stopping an inactive unit = %s, want loaded/inactive", name, describe(s))
	}
}

func testFailing(t *testing.T, inst Instance) {
	const name = "fleet-conformance-crasher.service"
	install(t, inst, name, crasher)
	waitState(t, inst, name, core.ActiveInactive, "dead")
	start(t, inst.Manager, name)
	waitState(t, inst, name, core.ActiveFailed, "failed")
}

func testRemoveRunning(t *testing.T, inst Instance) {
	const name = "fleet-conformance-remove.service"
	installAndStart(t, inst, name, sleeper)
	if err := inst.Manager.RemoveUnit(t.Context(), name); err != nil {
		t.Fatalf("RemoveUnit: %v", err)
	}
	waitGone(t, inst, name)
	// Writing the unit again shows whether the old one was stopped: a unit
	// that was not stopped would still be running.
	install(t, inst, name, sleeper)
	waitState(t, inst, name, core.ActiveInactive, "dead")
}

func testRemoveFailed(t *testing.T, inst Instance) {
	const name = "fleet-conformance-remove-failed.service"
	install(t, inst, name, crasher)
	start(t, inst.Manager, name)
	waitState(t, inst, name, core.ActiveFailed, "failed")
	if err := inst.Manager.RemoveUnit(t.Context(), name); err != nil {
		t.Fatalf("RemoveUnit: %v", err)
	}
	waitGone(t, inst, name)
	// RemoveUnit resets the failed state: written again, the unit is fresh.
	install(t, inst, name, crasher)
	s := waitFor(t, inst, name, "loaded", func(s core.UnitStatus) bool { return s.LoadState == core.LoadLoaded })
	for i := 0; ; i++ {
		if s.ActiveState != core.ActiveInactive || s.SubState != "dead" {
			t.Fatalf("%s: removed and written again = %s, want loaded/inactive/dead (RemoveUnit resets the failed state)",
				name, describe(s))
		}
		if i == 2 {
			return
		}
		inst.Settle()
		s, _ = find(t, inst, name)
	}
}

// testRepeatedStartStop queues starts and stops of one unit back to back,
// without waiting for any job, and checks that the last one wins each time.
func testRepeatedStartStop(t *testing.T, inst Instance) {
	const name = "fleet-conformance-toggle.service"
	install(t, inst, name, toggler)
	for round := range 3 {
		for range 10 {
			start(t, inst.Manager, name)
			stop(t, inst.Manager, name)
		}
		start(t, inst.Manager, name)
		waitState(t, inst, name, core.ActiveActive, "running")
		for range 10 {
			stop(t, inst.Manager, name)
			start(t, inst.Manager, name)
		}
		stop(t, inst.Manager, name)
		s := waitState(t, inst, name, core.ActiveInactive, "dead")
		if s.Hash != core.HashBytes(toggler) {
			t.Fatalf("round %d: %s: hash = %q, want %q", round, name, s.Hash, core.HashBytes(toggler))
		}
	}
	if n := count(units(t, inst), name); n != 1 {
		t.Fatalf("%s: listed %d times, want once", name, n)
	}
}
