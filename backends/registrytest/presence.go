package registrytest

import (
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

func testHeartbeatAndMachines(t *testing.T, in Instance) {
	reg := in.Registry
	heartbeat(t, reg, "m2", "s2")
	heartbeat(t, reg, "m3", "s3")
	heartbeat(t, reg, "m1", "s1")
	want := []core.MachineState{machine("m1"), machine("m2"), machine("m3")}
	wantEqual(t, listMachines(t, reg), want, "Machines (sorted by ID)")
}

func testHeartbeatUpdatesRecord(t *testing.T, in Instance) {
	reg := in.Registry
	heartbeat(t, reg, "m1", "s1")
	m := machine("m1")
	m.PublicIP = "127.0.0.2"
	m.Metadata = map[string]string{"region": "moved"}
	m.Capabilities.DisableEngine = true
	if err := reg.Heartbeat(t.Context(), m, "s1", ttl); err != nil {
		t.Fatalf("Heartbeat with a changed record: %v", err)
	}
	wantEqual(t, listMachines(t, reg), []core.MachineState{m}, "Machines after the changed heartbeat")
}

func testPresenceExpires(t *testing.T, in Instance) {
	reg := in.Registry
	heartbeat(t, reg, "m1", "s1")
	heartbeat(t, reg, "m2", "s2")
	in.Advance(ttl * 6 / 10)
	wantEqual(t, machineIDs(listMachines(t, reg)), "[m1 m2]", "Machines before the TTL ran out")
	heartbeat(t, reg, "m1", "s1")
	in.Advance(ttl * 6 / 10)
	wantEqual(t, machineIDs(listMachines(t, reg)), "[m1]", "Machines after m2's TTL ran out (m1 renewed)")
	in.Advance(ttl * 6 / 10)
	wantEqual(t, machineIDs(listMachines(t, reg)), "[]", "Machines after every TTL ran out")
}

func testSecondSessionConflicts(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	heartbeat(t, reg, "m1", "s1")
	other := machine("m1")
	other.PublicIP = "127.0.0.9"
	wantErrIs(t, reg.Heartbeat(ctx, other, "s2", ttl), core.ErrMachineConflict, "Heartbeat(m1) by a second session")
	wantEqual(t, listMachines(t, reg), []core.MachineState{machine("m1")}, "Machines after the conflicting heartbeat")
	heartbeat(t, reg, "m1", "s1")
}

func testTakeOverAfterExpiry(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	heartbeat(t, reg, "m1", "s1")
	in.Advance(ttl + ttl/2)
	heartbeat(t, reg, "m1", "s2")
	wantErrIs(t, reg.Heartbeat(ctx, machine("m1"), "s1", ttl), core.ErrMachineConflict, "Heartbeat(m1) by the expired session")
	wantEqual(t, machineIDs(listMachines(t, reg)), "[m1]", "Machines after the take-over")
}

func testLeave(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	heartbeat(t, reg, "m1", "s1")
	heartbeat(t, reg, "m2", "s2")
	if err := reg.Leave(ctx, "m1", "s1"); err != nil {
		t.Fatalf("Leave(m1): %v", err)
	}
	wantEqual(t, machineIDs(listMachines(t, reg)), "[m2]", "Machines right after m1 left")
	heartbeat(t, reg, "m1", "s3") // a new session, at once
	wantEqual(t, machineIDs(listMachines(t, reg)), "[m1 m2]", "Machines after m1 came back")
}

func testPublishRequiresPresence(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	states := []core.UnitState{state("a.service", "m1", core.ActiveActive)}
	wantErrIs(t, reg.PublishUnitStates(ctx, "m1", "s1", states, nil), core.ErrNotPresent, "PublishUnitStates before any heartbeat")
	heartbeat(t, reg, "m1", "s1")
	wantErrIs(t, reg.PublishUnitStates(ctx, "m1", "s2", states, nil), core.ErrNotPresent, "PublishUnitStates by another session")
	in.Advance(ttl + ttl/2)
	wantErrIs(t, reg.PublishUnitStates(ctx, "m1", "s1", states, nil), core.ErrNotPresent, "PublishUnitStates after the presence expired")
	wantEqual(t, stateKeys(listStates(t, reg)), "[]", "UnitStates after the rejected publications")
}

func testUnitStatesSorted(t *testing.T, in Instance) {
	reg := in.Registry
	heartbeat(t, reg, "m2", "s2")
	heartbeat(t, reg, "m1", "s1")
	publish(t, reg, "m2", "s2", []core.UnitState{
		state("b.service", "m2", core.ActiveActive),
		state("a.service", "m2", core.ActiveFailed),
	}, nil)
	publish(t, reg, "m1", "s1", []core.UnitState{
		state("b.service", "m1", core.ActiveInactive),
		state("c.service", "m1", core.ActiveActive),
	}, nil)
	publish(t, reg, "m1", "s1", []core.UnitState{state("c.service", "m1", core.ActiveFailed)}, nil)
	want := []core.UnitState{
		state("a.service", "m2", core.ActiveFailed),
		state("b.service", "m1", core.ActiveInactive),
		state("b.service", "m2", core.ActiveActive),
		state("c.service", "m1", core.ActiveFailed),
	}
	wantEqual(t, listStates(t, reg), want, "UnitStates (sorted by unit, then machine)")
}

func testRemovedOnlyThatMachine(t *testing.T, in Instance) {
	reg := in.Registry
	heartbeat(t, reg, "m1", "s1")
	heartbeat(t, reg, "m2", "s2")
	publish(t, reg, "m1", "s1", []core.UnitState{state("a.service", "m1", core.ActiveActive), state("b.service", "m1", core.ActiveActive)}, nil)
	publish(t, reg, "m2", "s2", []core.UnitState{state("a.service", "m2", core.ActiveActive)}, nil)
	publish(t, reg, "m1", "s1", nil, []string{"a.service", "never.service"})
	wantEqual(t, stateKeys(listStates(t, reg)), "[a.service@m2:active b.service@m1:active]", "UnitStates after m1 removed a.service")
}

func testStatesVanishWithPresence(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	for _, id := range []string{"m1", "m2", "m3"} {
		heartbeat(t, reg, id, "s-"+id)
		publish(t, reg, id, "s-"+id, []core.UnitState{state("a.service", id, core.ActiveActive)}, nil)
	}
	if err := reg.Leave(ctx, "m3", "s-m3"); err != nil {
		t.Fatalf("Leave(m3): %v", err)
	}
	wantEqual(t, stateKeys(listStates(t, reg)), "[a.service@m1:active a.service@m2:active]", "UnitStates after m3 left")
	in.Advance(ttl * 6 / 10)
	heartbeat(t, reg, "m1", "s-m1")
	in.Advance(ttl * 6 / 10)
	wantEqual(t, stateKeys(listStates(t, reg)), "[a.service@m1:active]", "UnitStates after m2's presence expired")
	heartbeat(t, reg, "m2", "s-new")
	wantEqual(t, stateKeys(listStates(t, reg)), "[a.service@m1:active]", "UnitStates after m2 came back with a new session")
}
