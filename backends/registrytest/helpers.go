package registrytest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// newUnit returns a unit named name in state inactive, with canonical contents
// that differ per name and variant, and their hash.
func newUnit(name string, global bool, variant string) (core.Unit, []byte) {
	opts := []core.Option{
		{Section: "Unit", Name: "Description", Value: name + " " + variant},
		{Section: "Service", Name: "ExecStart", Value: "/bin/sleep infinity"},
	}
	if global {
		opts = append(opts, core.Option{Section: core.XFleetSection, Name: "Global", Value: "true"})
	}
	uf := core.NewUnitFile(opts)
	return core.Unit{Name: name, Hash: uf.Hash(), TargetState: core.Inactive, Global: global}, uf.Bytes()
}

// createUnit stores a new unit and returns it.
func createUnit(t *testing.T, reg core.Registry, name string, global bool) core.Unit {
	t.Helper()
	u, contents := newUnit(name, global, "v1")
	if err := reg.CreateUnit(t.Context(), u, contents); err != nil {
		t.Fatalf("CreateUnit(%s): %v", name, err)
	}
	return u
}

// session is the fleetd session the suite's engines run in, by default.
func session(engine string) string { return engine + "/1" }

// acquire takes the leadership lease for engine in its default session and
// returns its fence.
func acquire(t *testing.T, reg core.Registry, engine string) core.Fence {
	t.Helper()
	f, err := reg.AcquireLeadership(t.Context(), engine, session(engine), ttl)
	if err != nil {
		t.Fatalf("AcquireLeadership(%s): %v", engine, err)
	}
	if f.Engine != engine || f.Session != session(engine) {
		t.Fatalf("AcquireLeadership(%s) returned fence of engine %q session %q", engine, f.Engine, f.Session)
	}
	return f
}

// apply writes ops under fence and fails the test on error or on a skipped op.
func apply(t *testing.T, reg core.Registry, fence core.Fence, ops ...core.ScheduleOp) {
	t.Helper()
	skipped, err := reg.ApplySchedule(t.Context(), fence, ops)
	if err != nil {
		t.Fatalf("ApplySchedule(%v, %d ops): %v", fence, len(ops), err)
	}
	if len(skipped) > 0 {
		t.Fatalf("ApplySchedule(%v, %d ops) skipped %v", fence, len(ops), skipped)
	}
}

// applyErr writes ops under fence and returns only the error.
func applyErr(t *testing.T, reg core.Registry, fence core.Fence, ops ...core.ScheduleOp) error {
	t.Helper()
	_, err := reg.ApplySchedule(t.Context(), fence, ops)
	return err
}

// place is an OpPlace of unit on machine, with a hash and state derived from them.
func place(unit, machine string, state core.JobState) core.ScheduleOp {
	return core.ScheduleOp{Kind: core.OpPlace, Placement: core.Placement{
		Unit: unit, Machine: machine, Hash: core.HashBytes([]byte(unit)), TargetState: state,
	}}
}

// unplace is an OpUnplace of unit from machine.
func unplace(unit, machine string) core.ScheduleOp {
	return core.ScheduleOp{Kind: core.OpUnplace, Placement: core.Placement{Unit: unit, Machine: machine}}
}

// machine returns the record a fleetd on machine id would announce.
func machine(id string) core.MachineState {
	return core.MachineState{
		ID:       id,
		PublicIP: "127.0.0.1",
		Metadata: map[string]string{"name": id, "region": "test"},
		Version:  "test",
	}
}

// heartbeat announces machine id for session with the suite's TTL.
func heartbeat(t *testing.T, reg core.Registry, id, session string) {
	t.Helper()
	if err := reg.Heartbeat(t.Context(), machine(id), session, ttl); err != nil {
		t.Fatalf("Heartbeat(%s, session %s): %v", id, session, err)
	}
}

// state is the UnitState machine publishes for unit, launched while active.
func state(unit, machine, active string) core.UnitState {
	return core.UnitState{
		Unit: unit, Machine: machine, Hash: core.HashBytes([]byte(unit)),
		LoadState: core.LoadLoaded, ActiveState: active, SubState: "running",
		Launched: active == core.ActiveActive,
	}
}

// publish publishes states for machine id and fails the test on error.
func publish(t *testing.T, reg core.Registry, id, session string, states []core.UnitState, removed []string) {
	t.Helper()
	if err := reg.PublishUnitStates(t.Context(), id, session, states, removed); err != nil {
		t.Fatalf("PublishUnitStates(%s, session %s): %v", id, session, err)
	}
}

// wantErrIs fails the test unless err wraps target.
func wantErrIs(t *testing.T, err, target error, call string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", call, err, target)
	}
}

// wantEqual fails the test unless got and want are deeply equal.
func wantEqual[T any](t *testing.T, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// listUnits lists the units with their revisions cleared, for comparisons with
// the units the test wrote; revisionOf reads a revision.
func listUnits(t *testing.T, reg core.Registry) []core.Unit {
	t.Helper()
	us, err := reg.Units(t.Context())
	if err != nil {
		t.Fatalf("Units: %v", err)
	}
	return withoutRevisions(us)
}

func listGlobalUnits(t *testing.T, reg core.Registry) []core.Unit {
	t.Helper()
	us, err := reg.GlobalUnits(t.Context())
	if err != nil {
		t.Fatalf("GlobalUnits: %v", err)
	}
	return withoutRevisions(us)
}

func withoutRevisions(us []core.Unit) []core.Unit {
	for i := range us {
		if us[i].Revision <= 0 {
			panic(fmt.Sprintf("unit %s listed with revision %d, want > 0", us[i].Name, us[i].Revision))
		}
		us[i].Revision = 0
	}
	return us
}

// revisionOf returns the Revision of the unit name as Units lists it.
func revisionOf(t *testing.T, reg core.Registry, name string) int64 {
	t.Helper()
	us, err := reg.Units(t.Context())
	if err != nil {
		t.Fatalf("Units: %v", err)
	}
	for _, u := range us {
		if u.Name == name {
			return u.Revision
		}
	}
	t.Fatalf("unit %s not listed", name)
	return 0
}

func listPlacements(t *testing.T, reg core.Registry) []core.Placement {
	t.Helper()
	ps, err := reg.Placements(t.Context())
	if err != nil {
		t.Fatalf("Placements: %v", err)
	}
	return ps
}

func listMachines(t *testing.T, reg core.Registry) []core.MachineState {
	t.Helper()
	ms, err := reg.Machines(t.Context())
	if err != nil {
		t.Fatalf("Machines: %v", err)
	}
	return ms
}

func listStates(t *testing.T, reg core.Registry) []core.UnitState {
	t.Helper()
	ss, err := reg.UnitStates(t.Context())
	if err != nil {
		t.Fatalf("UnitStates: %v", err)
	}
	return ss
}

// unitNames, placementKeys, machineIDs and stateKeys reduce listings to strings
// for short, readable comparisons.
func unitNames(us []core.Unit) string {
	names := make([]string, len(us))
	for i, u := range us {
		names[i] = u.Name
	}
	return "[" + strings.Join(names, " ") + "]"
}

func placementKeys(ps []core.Placement) string {
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = fmt.Sprintf("%s@%s:%s", p.Unit, p.Machine, p.TargetState)
	}
	return "[" + strings.Join(keys, " ") + "]"
}

func machineIDs(ms []core.MachineState) string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return "[" + strings.Join(ids, " ") + "]"
}

func stateKeys(ss []core.UnitState) string {
	keys := make([]string, len(ss))
	for i, s := range ss {
		keys[i] = fmt.Sprintf("%s@%s:%s", s.Unit, s.Machine, s.ActiveState)
	}
	return "[" + strings.Join(keys, " ") + "]"
}

// settle drains ch until it has been silent for settleWait, so that a test
// counts only the wake-ups of its own changes.
func settle(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	deadline := time.NewTimer(settleMax)
	defer deadline.Stop()
	for {
		quiet := time.NewTimer(settleWait)
		select {
		case _, ok := <-ch:
			quiet.Stop()
			if !ok {
				t.Fatal("Notify channel closed while its context is live")
			}
		case <-quiet.C:
			return
		case <-deadline.C:
			quiet.Stop()
			t.Fatalf("Notify channel kept receiving for %v without any change", settleMax)
		}
	}
}

// expectWake fails the test unless ch receives a value within wakeWait.
func expectWake(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	timer := time.NewTimer(wakeWait)
	defer timer.Stop()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("after %s: Notify channel closed, want a wake-up", after)
		}
	case <-timer.C:
		t.Fatalf("after %s: no wake-up within %v", after, wakeWait)
	}
}

// expectNoWake fails the test if ch receives a value within quietWait.
func expectNoWake(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	timer := time.NewTimer(quietWait)
	defer timer.Stop()
	select {
	case <-ch:
		t.Fatalf("after %s: woken, want no wake-up for a change out of scope", after)
	case <-timer.C:
	}
}
