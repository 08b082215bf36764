package core

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/internal/rapidopts"
	"pgregory.net/rapid"
)

// Property tests of the scheduler alone: random snapshots (machines with
// metadata, units with random [X-Fleet] rules, placements some of which are on
// machines that went away) go through PlanSchedule, and the plan is checked
// against the test's own reading of the rules (plan_prop_rules_test.go). By
// default each property runs 1,000 cases from a fixed seed; RAPID_CHECKS or
// -rapid.checks sets the count, RAPID_SEED or -rapid.seed the seed (0: random).

const planChecks = 1000

// TestPropPlanRespectsRules: after applying the plan, every placement is wanted,
// unique, on a live machine, and breaks no constraint; every wanted unit is
// placed or reported unplaceable, never both, and no machine could take a unit
// reported unplaceable; a placement on a machine that went
// away is moved or removed in the same plan.
func TestPropPlanRespectsRules(t *testing.T) {
	setRapidDefaults(t, planChecks)
	rapid.Check(t, func(t *rapid.T) {
		s := genSnapshot(t)
		p := PlanSchedule(s)
		after := applyPlan(t, s, p)
		checkSchedule(t, s, after)
		checkAccounted(t, s, after, p)
		checkUnplaceable(t, s, after, p)
		checkFailover(t, s, p)
	})
}

// TestPropPlanLeastLoaded: every placement decision picks a least-loaded
// eligible machine, ties broken by ID, as a brute-force search over all
// machines finds it.
func TestPropPlanLeastLoaded(t *testing.T) {
	setRapidDefaults(t, planChecks)
	rapid.Check(t, func(t *rapid.T) {
		s := genSnapshot(t)
		checkLeastLoaded(t, s, PlanSchedule(s))
	})
}

// TestPropPlanFixpoint: planning again after applying a plan decides nothing
// and finds the same units unplaceable.
func TestPropPlanFixpoint(t *testing.T) {
	setRapidDefaults(t, planChecks)
	rapid.Check(t, func(t *rapid.T) {
		s := genSnapshot(t)
		p := PlanSchedule(s)
		s2 := s
		s2.Placements = applyPlan(t, s, p)
		p2 := PlanSchedule(s2)
		if len(p2.Decisions) > 0 {
			t.Fatalf("second plan is not empty:\n%s\nfirst plan:\n%s", propLines(p2), propLines(p))
		}
		if a, b := unplaceableNames(p), unplaceableNames(p2); !reflect.DeepEqual(a, b) {
			t.Fatalf("unplaceable units changed from %v to %v", a, b)
		}
	})
}

// TestPropPlanMetadata: units that differ only in their MachineMetadata sets
// (one value with a comma, several values, the same values in another order)
// each get the machines that match their own set: none is reported
// unplaceable while a machine could take it, and each goes to the least-loaded
// match.
func TestPropPlanMetadata(t *testing.T) {
	setRapidDefaults(t, planChecks)
	roles := []string{"front", "back", "back,front", "front,back"}
	rapid.Check(t, func(t *rapid.T) {
		var s Snapshot
		for i := range rapid.IntRange(1, 4).Draw(t, "machines") {
			md := map[string]string{}
			if v := rapid.SampledFrom(append([]string{""}, roles...)).Draw(t, "role"); v != "" {
				md["role"] = v
			}
			s.Machines = append(s.Machines, MachineState{ID: fmt.Sprintf("m%d", i), Metadata: md})
		}
		for i := range rapid.IntRange(1, 6).Draw(t, "units") {
			want := rapid.SliceOfNDistinct(rapid.SampledFrom(roles), 1, 3, rapid.ID[string]).Draw(t, "roles")
			name := fmt.Sprintf("u%d.service", i)
			s.Units = append(s.Units, SchedUnit{Unit: Unit{Name: name, Hash: "h", TargetState: Launched},
				Req: Requirements{Metadata: map[string][]string{"role": want}}})
		}
		p := PlanSchedule(s)
		checkUnplaceable(t, s, applyPlan(t, s, p), p)
		checkLeastLoaded(t, s, p)
	})
}

// TestPropPlanDeterministic: the plan does not depend on the order of the
// snapshot's slices.
func TestPropPlanDeterministic(t *testing.T) {
	setRapidDefaults(t, planChecks)
	rapid.Check(t, func(t *rapid.T) {
		s := genSnapshot(t)
		want := PlanSchedule(s)
		shuffled := Snapshot{
			Units:      rapid.Permutation(s.Units).Draw(t, "units order"),
			Machines:   rapid.Permutation(s.Machines).Draw(t, "machines order"),
			Placements: rapid.Permutation(s.Placements).Draw(t, "placements order"),
		}
		if got := PlanSchedule(shuffled); !reflect.DeepEqual(got, want) {
			t.Fatalf("plan depends on input order:\n%s\n---\n%s", propLines(want), propLines(got))
		}
	})
}

// setRapidDefaults makes rapid run checks cases in this test, drawn from a
// fixed seed so that a default run is deterministic, unless the user chose the
// count (RAPID_CHECKS, -rapid.checks) or the seed (RAPID_SEED, -rapid.seed;
// 0 draws a random one).
func setRapidDefaults(t *testing.T, checks int) {
	rapidopts.Defaults(t, map[string]string{"rapid.checks": strconv.Itoa(checks), "rapid.seed": rapidopts.Seed})
}

// Unit names and globs come from small sets so that rules meet.
var (
	propNames = []string{"a.service", "b.service", "c.service", "db.service", "db-replica.service",
		"web@1.service", "web@2.service", "web@3.service", "cache.service", "log.service", "mon.service", "x.service"}
	propGlobs   = []string{"web@*.service", "%p@*.service", "a.service", "db*.service", "b.service", "*.service", "c.service"}
	propGone    = []string{"deadbeef0000000000000000000000aa", "deadbeef0000000000000000000000bb"}
	propPrefixs = []string{"3fa85f64", "3fa85f64", "9c0e1d2b", "e7a1c4d0"}
)

// propProfiles shape a snapshot: "mixed" draws every kind of rule on up to six
// machines; "chains" draws Replaces naming other units, most of them not
// placed yet, on one machine, so that displacements chain; "globals" draws global units that conflict with
// each other and units that need them (MachineOf) on up to three machines.
var propProfiles = map[string]struct {
	minMachines, maxMachines int
	minUnits, maxUnits       int
	kinds                    []string
	placements               []int // how many placements a unit gets
}{
	"mixed":   {0, 6, 0, 12, []string{"plain", "machineid", "global", "global", "machineof", "conflicts", "replaces", "replaces"}, []int{1, 1, 0, 2}},
	"chains":  {1, 1, 3, 6, []string{"plain", "replaces", "replaces", "replaces", "machineof"}, []int{0, 0, 1}},
	"globals": {1, 2, 3, 8, []string{"plain", "machineid", "global", "global", "global", "machineof", "machineof", "conflicts"}, []int{1, 1, 1, 0}},
}

// genSnapshot draws a snapshot: up to six live machines, up to twelve units,
// and placements of most of them, some stale, duplicated, on gone machines or
// on machines that break their rules (never two of one unit on one machine:
// the registry keys them so).
func genSnapshot(t *rapid.T) Snapshot {
	var s Snapshot
	profileName := rapid.SampledFrom([]string{"mixed", "chains", "globals"}).Draw(t, "profile")
	profile := propProfiles[profileName]
	for i := range rapid.IntRange(profile.minMachines, profile.maxMachines).Draw(t, "machines") {
		md := map[string]string{}
		for _, k := range []string{"role", "disk"} {
			if v := rapid.SampledFrom([]string{"", "front", "back", "ssd", "back,front"}).Draw(t, k); v != "" {
				md[k] = v
			}
		}
		id := fmt.Sprintf("%s%024x", rapid.SampledFrom(propPrefixs).Draw(t, "id prefix"), uint64(i+1)*0x9e3779b97f4a7c15)
		s.Machines = append(s.Machines, MachineState{ID: id, Metadata: md})
	}
	names := rapid.SliceOfNDistinct(rapid.SampledFrom(propNames), profile.minUnits, profile.maxUnits, rapid.ID[string]).Draw(t, "units")
	sort.Strings(names)
	kinds := map[string]string{}
	var globals []string
	for _, n := range names {
		kinds[n] = rapid.SampledFrom(profile.kinds).Draw(t, "kind "+n)
		if kinds[n] == "global" {
			globals = append(globals, n)
		}
	}
	for _, n := range names {
		s.Units = append(s.Units, genUnit(t, n, kinds[n], s.Machines, names, globals, profileName))
	}
	seen := map[[2]string]bool{}
	add := func(pl Placement) {
		if k := [2]string{pl.Unit, pl.Machine}; !seen[k] {
			seen[k] = true
			s.Placements = append(s.Placements, pl)
		}
	}
	if profileName == "globals" && len(names) >= 4 && len(s.Machines) > 0 && rapid.Bool().Draw(t, "global chain") {
		for _, pl := range plantGlobalChain(t, &s, names) {
			add(pl)
		}
	}
	for _, u := range s.Units {
		for range rapid.SampledFrom(profile.placements).Draw(t, "placements of "+u.Name) {
			add(genPlacement(t, u.Unit, s.Machines))
		}
	}
	for _, n := range rapid.SliceOfN(rapid.SampledFrom(propNames), 0, 2).Draw(t, "destroyed") {
		if !slicesContainsName(s.Units, n) {
			add(genPlacement(t, Unit{Name: n, Hash: "gone", TargetState: Launched}, s.Machines))
		}
	}
	sortPlacementsForTest(s.Placements)
	return s
}

// plantGlobalChain rewrites four or five of the units into a chain that only a
// planner that recomputes global units whenever a unit leaves gets right, and
// returns their placements: e is placed on a machine; global g1 conflicts with
// e and with global g2, which runs there while e does; f is placed there with
// MachineOf=g2. Then e leaves: its placement breaks its MachineID, or a unit r
// not placed yet replaces it there (r follows f). With e gone, g1 runs there
// and pushes g2 out, so f must leave too.
func plantGlobalChain(t *rapid.T, s *Snapshot, names []string) []Placement {
	pick := rapid.Permutation(names).Draw(t, "chain units")
	g1, g2 := min(pick[0], pick[1]), max(pick[0], pick[1])
	e, f, r := pick[2], pick[3], ""
	if len(pick) > 4 && rapid.Bool().Draw(t, "replaced") {
		r = pick[4]
	}
	m := rapid.SampledFrom(s.Machines).Draw(t, "chain machine").ID
	var out []Placement
	for i := range s.Units {
		u := &s.Units[i]
		switch u.Name {
		case g1:
			u.Req = Requirements{Global: true, Conflicts: []string{e, g2}}
		case g2:
			u.Req = Requirements{Global: true}
		case e:
			u.Req = Requirements{}
			if r == "" {
				u.Req = Requirements{MachineID: propGone[0], HasMachineID: true}
			}
		case f:
			u.Req = Requirements{MachineOf: []string{g2}}
		case r:
			u.Req = Requirements{Replaces: []string{e}, MachineOf: []string{f}}
		default:
			continue
		}
		u.Global, u.TargetState, u.Invalid = u.Req.Global, Launched, ""
		if !u.Global && u.Name != r {
			out = append(out, Placement{Unit: u.Name, Machine: m, Hash: u.Hash, TargetState: Launched})
		}
	}
	return out
}

func slicesContainsName(us []SchedUnit, n string) bool {
	for _, u := range us {
		if u.Name == n {
			return true
		}
	}
	return false
}

func sortPlacementsForTest(ps []Placement) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Unit != ps[j].Unit {
			return ps[i].Unit < ps[j].Unit
		}
		return ps[i].Machine < ps[j].Machine
	})
}

// genUnit draws a unit of the given kind with a valid combination of rules,
// specifiers expanded. names are the snapshot's units and globals its global
// ones: Replaces often name other units, so that they form chains; MachineOf
// often names a global unit; a global's Conflicts often name other units,
// globals among them. The "chains" and "globals" profiles make these always
// so, and draw no metadata.
func genUnit(t *rapid.T, name, kind string, ms []MachineState, names, globals []string, profile string) SchedUnit {
	var r Requirements
	chains, focused := profile == "chains", profile == "chains" || profile == "globals"
	globs := func(label string, more []string) []string {
		pool := propGlobs
		if len(more) > 0 && rapid.Bool().Draw(t, label+" among units") {
			pool = more
		}
		return rapid.SliceOfN(rapid.SampledFrom(pool), 1, 2).Draw(t, label)
	}
	switch kind {
	case "machineid":
		ids := append([]string(nil), propGone...)
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		r.MachineID, r.HasMachineID = rapid.SampledFrom(ids).Draw(t, "machine id"), true
		if rapid.Bool().Draw(t, "short id") {
			r.MachineID = r.MachineID[:ShortIDLength]
		}
	case "global":
		r.Global = true
		if profile == "globals" {
			r.Conflicts = rapid.SliceOfN(rapid.SampledFrom(names), 1, 2).Draw(t, "conflicts")
		} else if rapid.Bool().Draw(t, "global conflicts") {
			r.Conflicts = globs("conflicts", names)
		}
	case "machineof":
		pool := propNames
		if len(globals) > 0 && (profile == "globals" || rapid.Bool().Draw(t, "global peer")) {
			pool = globals
		}
		r.MachineOf = rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 1, 2, rapid.ID[string]).Draw(t, "peers")
	case "conflicts":
		r.Conflicts = globs("conflicts", nil)
	case "replaces":
		if chains {
			r.Replaces = rapid.SliceOfN(rapid.SampledFrom(append([]string{"web@*.service"}, names...)), 1, 2).Draw(t, "replaces")
		} else {
			r.Replaces = globs("replaces", names)
		}
	}
	if !focused && rapid.Bool().Draw(t, "metadata "+name) {
		r.Metadata = map[string][]string{}
		// "back,front" is one value, not two: it must not be taken for both.
		r.Metadata["role"] = rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"front", "back", "back,front"}), 1, 2, rapid.ID[string]).Draw(t, "roles")
		sort.Strings(r.Metadata["role"])
		if rapid.Bool().Draw(t, "disk") {
			r.Metadata["disk"] = []string{"ssd"}
		}
	}
	un, err := ParseUnitName(name)
	if err != nil {
		t.Fatal(err)
	}
	r = r.ForUnit(un)
	r.MachineOf = withoutSelf(r.MachineOf, name)
	if err := r.validate(name); err != nil {
		t.Fatalf("generator made invalid rules: %v", err)
	}
	u := SchedUnit{
		Unit: Unit{Name: name, Hash: Hash("h-" + name), Global: r.Global,
			TargetState: rapid.SampledFrom([]JobState{Launched, Launched, Loaded, Inactive}).Draw(t, "target "+name)},
		Req: r,
	}
	if rapid.IntRange(0, 9).Draw(t, "invalid "+name) == 9 {
		u.Invalid = "unit file cannot be parsed"
	}
	return u
}

func withoutSelf(peers []string, self string) []string {
	var out []string
	for _, p := range peers {
		if p != self {
			out = append(out, p)
		}
	}
	return out
}

// genPlacement places u on a live or gone machine, sometimes with stale
// contents or target state.
func genPlacement(t *rapid.T, u Unit, ms []MachineState) Placement {
	ids := append([]string(nil), propGone...)
	for _, m := range ms {
		ids = append(ids, m.ID, m.ID)
	}
	p := Placement{Unit: u.Name, Machine: rapid.SampledFrom(ids).Draw(t, "machine"), Hash: u.Hash, TargetState: u.TargetState}
	if rapid.IntRange(0, 7).Draw(t, "stale hash") == 7 {
		p.Hash = "old-" + u.Hash
	}
	if rapid.IntRange(0, 3).Draw(t, "stale target") == 3 {
		p.TargetState = rapid.SampledFrom([]JobState{Launched, Loaded, Inactive}).Draw(t, "placed target")
	}
	return p
}

// applyPlan applies the decisions to the snapshot's placements, as a registry
// would, and checks that each one is applicable.
func applyPlan(t *rapid.T, s Snapshot, p Plan) []Placement {
	type key struct{ unit, machine string }
	have := map[key]Placement{}
	for _, pl := range s.Placements {
		have[key{pl.Unit, pl.Machine}] = pl
	}
	live := liveIDs(s)
	place := func(d Decision) {
		if !live[d.To] {
			t.Fatalf("%s: %s is not a live machine", d, d.To)
		}
		have[key{d.Unit, d.To}] = Placement{Unit: d.Unit, Machine: d.To, Hash: d.Hash, TargetState: d.TargetState}
	}
	unplace := func(d Decision) {
		if _, ok := have[key{d.Unit, d.From}]; !ok {
			t.Fatalf("%s: %s is not placed on %s", d, d.Unit, d.From)
		}
		delete(have, key{d.Unit, d.From})
	}
	for _, d := range p.Decisions {
		switch d.Kind {
		case Schedule:
			place(d)
		case Unschedule:
			unplace(d)
		case Reschedule:
			unplace(d)
			place(d)
		case Retarget:
			if _, ok := have[key{d.Unit, d.To}]; !ok {
				t.Fatalf("%s: %s is not placed on %s", d, d.Unit, d.To)
			}
			place(d)
		default:
			t.Fatalf("unknown decision %v", d)
		}
	}
	out := make([]Placement, 0, len(have))
	for _, pl := range have {
		out = append(out, pl)
	}
	sortPlacementsForTest(out)
	return out
}

func liveIDs(s Snapshot) map[string]bool {
	live := map[string]bool{}
	for _, m := range s.Machines {
		live[m.ID] = true
	}
	return live
}

func propLines(p Plan) string {
	var out []string
	for _, d := range p.Decisions {
		out = append(out, "  "+d.String())
	}
	for _, u := range p.Unplaceable {
		out = append(out, "  "+u.String())
	}
	return strings.Join(out, "\n")
}

func unplaceableNames(p Plan) []string {
	var out []string
	for _, u := range p.Unplaceable {
		out = append(out, u.Unit)
	}
	sort.Strings(out)
	return out
}
