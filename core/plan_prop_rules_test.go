package core

import (
	"path"
	"sort"
	"strings"

	"pgregory.net/rapid"
)

// The rules, as this test reads them from DESIGN.md and the [X-Fleet] docs.

// wantsToRun: the unit should be placed on one machine, or reported
// unplaceable; wanted: it can be placed.
func wantsToRun(u *SchedUnit) bool { return u != nil && !u.Global && u.TargetState != Inactive }

func wanted(u *SchedUnit) bool { return wantsToRun(u) && u.Invalid == "" }

func anyGlob(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// ruleConflict: either unit's Conflicts globs match the other's name.
func ruleConflict(a, b *SchedUnit) bool {
	return a.Name != b.Name && (anyGlob(a.Req.Conflicts, b.Name) || anyGlob(b.Req.Conflicts, a.Name))
}

// ruleReplaces: a's Replaces globs match b, and no chain of Replaces among all
// the units leads from b back to a (relations in a cycle are ignored).
func ruleReplaces(all map[string]*SchedUnit, a, b *SchedUnit) bool {
	if a.Name == b.Name || !anyGlob(a.Req.Replaces, b.Name) {
		return false
	}
	seen := map[string]bool{b.Name: true}
	queue := []*SchedUnit{b}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range all {
			if y.Name == x.Name || seen[y.Name] || !anyGlob(x.Req.Replaces, y.Name) {
				continue
			}
			if y.Name == a.Name {
				return false
			}
			seen[y.Name] = true
			queue = append(queue, y)
		}
	}
	return true
}

// ruleMachine says why machine m itself cannot take u (MachineID, metadata).
func ruleMachine(u *SchedUnit, m MachineState) string {
	if id := u.Req.MachineID; u.Req.HasMachineID && (id == "" || id != m.ID && !(len(id) == 8 && strings.HasPrefix(m.ID, id))) {
		return "MachineID " + id
	}
	for k, vs := range u.Req.Metadata {
		v, ok := m.Metadata[k]
		if !ok || !contains(vs, v) {
			return "metadata " + k
		}
	}
	return ""
}

// ruleFits says why u cannot run on m next to the units there, or "".
func ruleFits(all map[string]*SchedUnit, u *SchedUnit, m MachineState, there []*SchedUnit) string {
	if why := ruleMachine(u, m); why != "" {
		return why
	}
	names := map[string]bool{}
	for _, v := range there {
		names[v.Name] = true
	}
	for _, peer := range u.Req.MachineOf {
		if !names[peer] {
			return "peer " + peer + " missing"
		}
	}
	for _, v := range there {
		if ruleConflict(u, v) {
			return "conflicts with " + v.Name
		}
		if ruleReplaces(all, v, u) {
			return "replaced by " + v.Name
		}
	}
	return ""
}

// ruleGlobals: the global units that run on m next to the placed units: in
// name order, each whose metadata m matches and that conflicts with nothing
// already there.
func ruleGlobals(s Snapshot, m MachineState, placed []*SchedUnit) []*SchedUnit {
	var out []*SchedUnit
	there := append([]*SchedUnit(nil), placed...)
	for _, n := range sortedNames(s) {
		g := unitIndex(s)[n]
		if !g.Global || g.Invalid != "" || g.TargetState == Inactive || ruleMachine(g, m) != "" {
			continue
		}
		ok := true
		for _, v := range there {
			ok = ok && !ruleConflict(g, v)
		}
		if ok {
			there = append(there, g)
			out = append(out, g)
		}
	}
	return out
}

func unitIndex(s Snapshot) map[string]*SchedUnit {
	out := make(map[string]*SchedUnit, len(s.Units))
	for i := range s.Units {
		out[s.Units[i].Name] = &s.Units[i]
	}
	return out
}

func sortedNames(s Snapshot) []string {
	out := make([]string, 0, len(s.Units))
	for _, u := range s.Units {
		out = append(out, u.Name)
	}
	sort.Strings(out)
	return out
}

// checkSchedule checks the schedule a plan leaves.
func checkSchedule(t *rapid.T, s Snapshot, after []Placement) {
	units := unitIndex(s)
	live := liveIDs(s)
	seen := map[string]string{}
	placed := map[string][]*SchedUnit{}
	for _, pl := range after {
		u := units[pl.Unit]
		switch {
		case !wanted(u):
			t.Fatalf("%s stays placed on %s but should not run", pl.Unit, pl.Machine)
		case !live[pl.Machine]:
			t.Fatalf("%s stays placed on %s, which went away", pl.Unit, pl.Machine)
		case seen[pl.Unit] != "":
			t.Fatalf("%s is placed on %s and %s", pl.Unit, seen[pl.Unit], pl.Machine)
		case pl.Hash != u.Hash || pl.TargetState != u.TargetState:
			t.Fatalf("placement %+v is stale: unit is %s/%s", pl, u.Hash, u.TargetState)
		}
		seen[pl.Unit] = pl.Machine
		placed[pl.Machine] = append(placed[pl.Machine], u)
	}
	for _, m := range s.Machines {
		there := append(append([]*SchedUnit(nil), placed[m.ID]...), ruleGlobals(s, m, placed[m.ID])...)
		for _, u := range placed[m.ID] {
			if why := ruleFits(units, u, m, there); why != "" {
				t.Fatalf("%s on %s: %s", u.Name, m.ID, why)
			}
		}
	}
}

// checkAccounted: every wanted unit is placed or reported unplaceable, once.
func checkAccounted(t *rapid.T, s Snapshot, after []Placement, p Plan) {
	placed := map[string]bool{}
	for _, pl := range after {
		placed[pl.Unit] = true
	}
	reported := map[string]bool{}
	for _, u := range p.Unplaceable {
		switch {
		case reported[u.Unit]:
			t.Fatalf("%s reported unplaceable twice", u.Unit)
		case placed[u.Unit]:
			t.Fatalf("%s is placed and reported unplaceable (%s)", u.Unit, u.Reason)
		case !wantsToRun(unitIndex(s)[u.Unit]):
			t.Fatalf("%s reported unplaceable but should not run", u.Unit)
		}
		reported[u.Unit] = true
	}
	for _, u := range s.Units {
		if wantsToRun(&u) && !placed[u.Name] && !reported[u.Name] {
			t.Fatalf("%s is neither placed nor reported unplaceable", u.Name)
		}
	}
}

// checkUnplaceable: no live machine could take a valid unit reported
// unplaceable, next to the units the plan leaves there.
func checkUnplaceable(t *rapid.T, s Snapshot, after []Placement, p Plan) {
	units := unitIndex(s)
	placed := map[string][]*SchedUnit{}
	for _, pl := range after {
		placed[pl.Machine] = append(placed[pl.Machine], units[pl.Unit])
	}
	for _, up := range p.Unplaceable {
		u := units[up.Unit]
		if !wanted(u) {
			continue
		}
		for _, m := range s.Machines {
			there := append(append([]*SchedUnit(nil), placed[m.ID]...), ruleGlobals(s, m, placed[m.ID])...)
			if ruleFits(units, u, m, there) == "" {
				t.Fatalf("%s reported unplaceable (%s), but %s can take it:\n%s", u.Name, up.Reason, m.ID, propLines(p))
			}
		}
	}
}

// checkFailover: a wanted unit placed only on a machine that went away is
// rescheduled from it, or unscheduled from it and reported unplaceable.
func checkFailover(t *rapid.T, s Snapshot, p Plan) {
	live := liveIDs(s)
	count := map[string]int{}
	for _, pl := range s.Placements {
		count[pl.Unit]++
	}
	unplaceable := map[string]bool{}
	for _, u := range p.Unplaceable {
		unplaceable[u.Unit] = true
	}
	for _, pl := range s.Placements {
		if live[pl.Machine] || count[pl.Unit] > 1 || !wanted(unitIndex(s)[pl.Unit]) {
			continue
		}
		ok := false
		for _, d := range p.Decisions {
			ok = ok || d.Unit == pl.Unit && d.From == pl.Machine &&
				(d.Kind == Reschedule || d.Kind == Unschedule && unplaceable[pl.Unit])
		}
		if !ok {
			t.Fatalf("%s on gone machine %s is neither rescheduled nor reported unplaceable:\n%s", pl.Unit, pl.Machine, propLines(p))
		}
	}
}

// checkLeastLoaded replays the plan. Placements the plan moves for a reason
// other than a Replaces leave before the first decision (the planner evicts
// them first); a unit displaced by a Replaces leaves at its decision, and may
// not return to the machine it left. Global units count where they run at the
// start, and again where such a unit left. Each Schedule or Reschedule must go to the machine with the fewest
// units among those that can take it, the lowest ID among equals.
func checkLeastLoaded(t *rapid.T, s Snapshot, p Plan) {
	units := unitIndex(s)
	live := liveIDs(s)
	inSeq := Decision.Displaced
	moved := map[[2]string]bool{}
	for _, d := range p.Decisions {
		if (d.Kind == Unschedule || d.Kind == Reschedule) && !inSeq(d) {
			moved[[2]string{d.Unit, d.From}] = true
		}
	}
	placed := map[string][]*SchedUnit{}
	where := map[string]string{}
	for _, pl := range s.Placements {
		if u := units[pl.Unit]; wanted(u) && live[pl.Machine] && !moved[[2]string{pl.Unit, pl.Machine}] {
			placed[pl.Machine] = append(placed[pl.Machine], u)
			where[pl.Unit] = pl.Machine
		}
	}
	globals := map[string][]*SchedUnit{}
	for _, m := range s.Machines {
		globals[m.ID] = ruleGlobals(s, m, placed[m.ID])
	}
	ms := append([]MachineState(nil), s.Machines...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	for _, d := range p.Decisions {
		if inSeq(d) && (d.Kind == Unschedule || d.Kind == Reschedule) {
			if where[d.Unit] != d.From {
				t.Fatalf("%s: %s is on %q at that point", d, d.Unit, where[d.Unit])
			}
			placed[d.From] = removeUnit(placed[d.From], d.Unit)
			delete(where, d.Unit)
			// With the unit gone, a global it kept out may run there, and push
			// out another.
			for _, m := range ms {
				if m.ID == d.From {
					globals[m.ID] = ruleGlobals(s, m, placed[m.ID])
				}
			}
		}
		if d.Kind != Schedule && d.Kind != Reschedule {
			continue
		}
		if where[d.Unit] != "" {
			t.Fatalf("%s: %s is still on %s", d, d.Unit, where[d.Unit])
		}
		u := units[d.Unit]
		best, bestLoad := "", 0
		for _, m := range ms {
			there := append(append([]*SchedUnit(nil), placed[m.ID]...), globals[m.ID]...)
			if (inSeq(d) && m.ID == d.From) || ruleFits(units, u, m, there) != "" {
				continue
			}
			if best == "" || len(there) < bestLoad {
				best, bestLoad = m.ID, len(there)
			}
		}
		if best != d.To {
			t.Fatalf("%s: the least-loaded machine that can take it is %q (load %d), not %s (load %d)\nplan:\n%s",
				d, best, bestLoad, d.To, len(placed[d.To])+len(globals[d.To]), propLines(p))
		}
		placed[d.To] = append(placed[d.To], u)
		where[d.Unit] = d.To
	}
}

func removeUnit(us []*SchedUnit, name string) []*SchedUnit {
	out := us[:0:0]
	for _, u := range us {
		if u.Name != name {
			out = append(out, u)
		}
	}
	return out
}
