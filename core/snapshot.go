package core

import "sort"

// SchedUnit is a unit as the scheduler sees it: the stored record and its
// requirements with specifiers expanded for its name.
type SchedUnit struct {
	Unit
	Req Requirements
	// Invalid, if set, says why the unit can never be placed (its stored contents
	// could not be read or parsed).
	Invalid string
}

// Snapshot is the cluster state one engine pass plans from.
type Snapshot struct {
	Units      []SchedUnit    // every unit, sorted by name
	Machines   []MachineState // live machines, sorted by ID
	Placements []Placement    // every placement
}

// EligibleGlobals returns the global units that run on machine m, given the
// non-global units placed there: in name order, each global whose metadata the
// machine matches and that conflicts with nothing already chosen. The engine and
// the agent both use this rule, so they agree on what runs where.
func EligibleGlobals(m MachineState, placed []*SchedUnit, globals []*SchedUnit) []*SchedUnit {
	var out []*SchedUnit
	conflictsAny := func(g *SchedUnit, set []*SchedUnit) bool {
		for _, u := range set {
			if ConflictsWith(g.Name, g.Req, u.Name, u.Req) {
				return true
			}
		}
		return false
	}
	for _, g := range globals {
		if g.Invalid != "" || g.TargetState == Inactive || !m.MatchMetadata(g.Req.Metadata) {
			continue
		}
		if conflictsAny(g, placed) || conflictsAny(g, out) {
			continue
		}
		out = append(out, g)
	}
	return out
}

// sortPlacements orders placements by unit, then machine.
func sortPlacements(ps []Placement) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Unit != ps[j].Unit {
			return ps[i].Unit < ps[j].Unit
		}
		return ps[i].Machine < ps[j].Machine
	})
}
