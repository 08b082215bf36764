package core

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// world builds scheduler snapshots for tests.
type world struct {
	t    *testing.T
	snap Snapshot
}

func newWorld(t *testing.T, machines ...string) *world {
	w := &world{t: t}
	for _, m := range machines {
		id, md, _ := strings.Cut(m, ":")
		ms := MachineState{ID: id, Metadata: map[string]string{}}
		for _, kv := range strings.Split(md, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				ms.Metadata[k] = v
			}
		}
		w.snap.Machines = append(w.snap.Machines, ms)
	}
	return w
}

// unit adds a unit with the given [X-Fleet] lines, launched.
func (w *world) unit(name string, xfleet ...string) *world {
	w.t.Helper()
	body := "[Service]\nExecStart=/bin/true\n"
	if len(xfleet) > 0 {
		body += "\n[X-Fleet]\n" + strings.Join(xfleet, "\n") + "\n"
	}
	uf, err := ParseUnitFile(name, []byte(body))
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := ParseRequirements(name, uf)
	if err != nil {
		w.t.Fatal(err)
	}
	n, _ := ParseUnitName(name)
	w.snap.Units = append(w.snap.Units, SchedUnit{Unit: Unit{Name: name, Hash: uf.Hash(), TargetState: Launched, Global: r.Global}, Req: r.ForUnit(n)})
	return w
}

func (w *world) find(name string) *SchedUnit {
	for i := range w.snap.Units {
		if w.snap.Units[i].Name == name {
			return &w.snap.Units[i]
		}
	}
	w.t.Fatalf("no unit %s", name)
	return nil
}

// placed records an existing placement.
func (w *world) placed(unit, machine string) *world {
	u := w.find(unit)
	w.snap.Placements = append(w.snap.Placements, Placement{Unit: unit, Machine: machine, Hash: u.Hash, TargetState: u.TargetState})
	return w
}

// apply runs a plan and folds its decisions into the snapshot, like the registry would.
func (w *world) apply() Plan {
	p := PlanSchedule(w.snap)
	for _, op := range ops(p.Decisions, func(string) int64 { return 0 }) {
		var kept []Placement
		for _, pl := range w.snap.Placements {
			if pl.Unit != op.Unit || pl.Machine != op.Machine {
				kept = append(kept, pl)
			}
		}
		if op.Kind == OpPlace {
			kept = append(kept, op.Placement)
		}
		w.snap.Placements = kept
	}
	return p
}

func lines(p Plan) string {
	var out []string
	for _, d := range p.Decisions {
		out = append(out, d.String())
	}
	for _, u := range p.Unplaceable {
		out = append(out, u.String())
	}
	return strings.Join(out, "\n")
}

func expectPlan(t *testing.T, p Plan, want ...string) {
	t.Helper()
	if got := lines(p); got != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestLeastLoadedWithGlobalAndTieByID(t *testing.T) {
	w := newWorld(t, "m0", "m1", "m2:role=edge").
		unit("g.service", "Global=true", "MachineMetadata=role=edge").
		unit("a.service").unit("b.service").unit("c.service")
	expectPlan(t, w.apply(), "schedule a.service to m0", "schedule b.service to m1", "schedule c.service to m0")
}

func TestConflictsSpreadAndUnplaceable(t *testing.T) {
	w := newWorld(t, "m1", "m2").
		unit("web@1.service", "Conflicts=web@*.service").
		unit("web@2.service", "Conflicts=web@*.service").
		unit("web@3.service", "Conflicts=web@*.service")
	expectPlan(t, w.apply(), "schedule web@1.service to m1", "schedule web@2.service to m2", "unplaceable web@3.service (conflicts with web@2.service)")
}

func TestMachineOfFollowsPeerWhenMachineGoesAway(t *testing.T) {
	w := newWorld(t, "m2", "m3").
		unit("db.service").unit("app.service", "MachineOf=db.service").unit("x.service").
		placed("db.service", "m1").placed("app.service", "m1").placed("x.service", "m2")
	expectPlan(t, w.apply(),
		"reschedule db.service from m1 to m3 (machine m1 went away)",
		"reschedule app.service from m1 to m3 (machine m1 went away)")
}

func TestMetadataAndShortMachineID(t *testing.T) {
	w := newWorld(t, "aaaaaaaa1111", "bbbbbbbb2222:disk=ssd", "cccccccc3333:disk=hdd").
		unit("fast.service", `MachineMetadata="disk=ssd" "disk=nvme"`).
		unit("pinned.service", "MachineID=cccccccc").
		unit("nowhere.service", "MachineMetadata=gpu=yes")
	expectPlan(t, w.apply(),
		"schedule fast.service to bbbbbbbb2222",
		"schedule pinned.service to cccccccc3333",
		"unplaceable nowhere.service (no live machine matches its metadata)")
}

func TestReplacesMovesTheReplacedUnit(t *testing.T) {
	w := newWorld(t, "m1:tier=front", "m2").
		unit("old.service").unit("new.service", "Replaces=old.service", "MachineMetadata=tier=front").
		placed("old.service", "m1")
	expectPlan(t, w.apply(),
		"schedule new.service to m1",
		"reschedule old.service from m1 to m2 (replaced by new.service)")
	expectPlan(t, w.apply())
}

func TestReplacedUnitWithNowhereToGoIsUnscheduled(t *testing.T) {
	w := newWorld(t, "m1").
		unit("old.service").unit("new.service", "Replaces=old.service").
		placed("old.service", "m1")
	expectPlan(t, w.apply(),
		"schedule new.service to m1",
		"unschedule old.service from m1 (replaced by new.service; no eligible machine)",
		"unplaceable old.service (new.service replaces it)")
}

func TestUnscheduleAndRetarget(t *testing.T) {
	w := newWorld(t, "m1").unit("a.service").unit("b.service").unit("c.service").
		placed("a.service", "m1").placed("b.service", "m1").placed("c.service", "m1")
	w.find("a.service").TargetState = Inactive
	w.find("b.service").TargetState = Loaded
	w.snap.Units = w.snap.Units[:2] // c destroyed
	expectPlan(t, w.apply(),
		"unschedule a.service from m1 (target state inactive)",
		"unschedule c.service from m1 (unit destroyed)",
		"retarget b.service on m1 to loaded")
	expectPlan(t, w.apply())
}

func TestNewConflictEvictsTheLaterUnit(t *testing.T) {
	w := newWorld(t, "m1", "m2").unit("a.service").unit("b.service", "Conflicts=a.service").
		placed("a.service", "m1").placed("b.service", "m1")
	expectPlan(t, w.apply(), "reschedule b.service from m1 to m2 (conflicts with a.service)")
}

func TestPlanIsDeterministic(t *testing.T) {
	build := func(reverse bool) Snapshot {
		var ms []string
		for i := 0; i < 20; i++ {
			ms = append(ms, fmt.Sprintf("m%02d", i))
		}
		w := newWorld(t, ms...)
		for i := 0; i < 50; i++ {
			w.unit(fmt.Sprintf("u%02d.service", i), "Conflicts=u0*.service")
		}
		s := w.snap
		if reverse {
			for i, j := 0, len(s.Units)-1; i < j; i, j = i+1, j-1 {
				s.Units[i], s.Units[j] = s.Units[j], s.Units[i]
			}
			for i, j := 0, len(s.Machines)-1; i < j; i, j = i+1, j-1 {
				s.Machines[i], s.Machines[j] = s.Machines[j], s.Machines[i]
			}
		}
		return s
	}
	a, b := PlanSchedule(build(false)), PlanSchedule(build(true))
	if !reflect.DeepEqual(a, b) {
		t.Errorf("plans differ with input order:\n%s\n---\n%s", lines(a), lines(b))
	}
}

func TestReplaceCyclesAreIgnored(t *testing.T) {
	w := newWorld(t, "m1").
		unit("a.service", "Replaces=b.service").
		unit("b.service", "Replaces=c.service").
		unit("c.service", "Replaces=a.service").
		unit("d.service", "Replaces=a.service")
	var all []*SchedUnit
	for i := range w.snap.Units {
		all = append(all, &w.snap.Units[i])
	}
	g := NewReplaceGraph(all)
	for _, pair := range [][2]string{{"a.service", "b.service"}, {"b.service", "c.service"}, {"c.service", "a.service"}} {
		if g.Replaces(pair[0], pair[1]) {
			t.Errorf("%s replaces %s inside a cycle; want the relation ignored", pair[0], pair[1])
		}
	}
	if !g.Replaces("d.service", "a.service") {
		t.Error("d.service, outside the cycle, should replace a.service")
	}
	w.snap.Units = w.snap.Units[:3]
	expectPlan(t, w.apply(), "schedule a.service to m1", "schedule b.service to m1", "schedule c.service to m1")
	expectPlan(t, w.apply())
}

// TestDecisionCauses: each decision carries its cause as a value, with the
// unit behind it, so that callers need not parse the reason.
func TestDecisionCauses(t *testing.T) {
	w := newWorld(t, "m1:role=a", "m2").
		unit("db.service").unit("app.service", "MachineOf=db.service").
		unit("new.service", "Replaces=db.service", "MachineMetadata=role=a").
		unit("x.service").unit("gone.service").
		placed("db.service", "m1").placed("app.service", "m1").placed("x.service", "m0").placed("gone.service", "m2")
	w.snap.Units = w.snap.Units[:len(w.snap.Units)-1]
	type cause struct {
		unit    string
		kind    DecisionKind
		cause   Cause
		related string
	}
	var got []cause
	for _, d := range PlanSchedule(w.snap).Decisions {
		got = append(got, cause{d.Unit, d.Kind, d.Cause, d.Related})
	}
	want := []cause{
		{"gone.service", Unschedule, CauseDestroyed, ""},
		{"new.service", Schedule, CausePending, ""},
		{"db.service", Reschedule, CauseReplaced, "new.service"},
		{"app.service", Reschedule, CauseFollowsPeer, "db.service"},
		{"x.service", Reschedule, CauseMachineGone, ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("causes = %+v\nwant %+v", got, want)
	}
}

// TestChainedReplacesReachAFixpoint: web@2 displaces web@1, which had
// displaced a; a fits again once web@1 is gone, in the same pass.
func TestChainedReplacesReachAFixpoint(t *testing.T) {
	w := newWorld(t, "m1").
		unit("a.service").
		unit("web@1.service", "Replaces=a.service").
		unit("web@2.service", "Replaces=web@*.service")
	expectPlan(t, w.apply(),
		"schedule a.service to m1",
		"schedule web@1.service to m1",
		"unschedule a.service from m1 (replaced by web@1.service; no eligible machine)",
		"schedule web@2.service to m1",
		"unschedule web@1.service from m1 (replaced by web@2.service; no eligible machine)",
		"schedule a.service to m1",
		"unplaceable web@1.service (web@2.service replaces it)")
	expectPlan(t, w.apply(), "unplaceable web@1.service (web@2.service replaces it)")
}

// TestDisplacementLetsAGlobalIn: r displaces x; with x gone, global g1 runs on
// m1 and pushes out g2, which f needs there: f must leave in the same pass.
func TestDisplacementLetsAGlobalIn(t *testing.T) {
	w := newWorld(t, "m1:role=a", "m2").
		unit("f.service", "MachineOf=g2.service").
		unit("g1.service", "Global=true", "Conflicts=x.service g2.service").
		unit("g2.service", "Global=true").
		unit("r.service", "Replaces=x.service", "MachineMetadata=role=a").
		unit("x.service").
		placed("f.service", "m1").placed("x.service", "m1")
	expectPlan(t, w.apply(),
		"schedule r.service to m1",
		"unschedule x.service from m1 (replaced by r.service; no eligible machine)",
		"unschedule f.service from m1 (replaced by r.service (peer g2.service); no eligible machine)",
		"unplaceable x.service (conflicts with g1.service)",
		"unplaceable f.service (peer g2.service is not on the machine)")
	expectPlan(t, w.apply(),
		"unplaceable f.service (peer g2.service is not on the machine)",
		"unplaceable x.service (conflicts with g1.service)")
}
