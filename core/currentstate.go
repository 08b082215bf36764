package core

// CurrentState is a non-global unit's cluster-level state (fleet's derived
// "current state"), from the registry's values alone: the unit's placements
// and the states the machines publish for it.
//
//   - inactive: not placed, or the machine it is placed on publishes no state
//     for it with the placement's contents (not loaded there yet, or the
//     machine is gone);
//   - loaded: that machine has it loaded, not launched;
//   - launched: that machine holds it launched (UnitState.Launched).
//
// A unit placed on several machines at once (a transient the engine repairs)
// takes the highest state among them. Global units have no cluster-level
// state: their state is per machine.
func CurrentState(placements []Placement, states []UnitState) JobState {
	best := Inactive
	for _, p := range placements {
		for _, s := range states {
			if s.Unit != p.Unit || s.Machine != p.Machine || s.Hash != p.Hash {
				continue
			}
			st := Loaded
			if s.Launched {
				st = Launched
			}
			if st.rank() > best.rank() {
				best = st
			}
		}
	}
	return best
}

// ClusterStates holds the cluster-level state of every placed unit.
type ClusterStates map[string]JobState

// Of is unit's cluster-level state: inactive when it is not placed.
func (c ClusterStates) Of(unit string) JobState {
	if s, ok := c[unit]; ok {
		return s
	}
	return Inactive
}

// CurrentStates is CurrentState of every unit at once, in one pass over the
// placements and the states, for listings of many units.
func CurrentStates(placements []Placement, states []UnitState) ClusterStates {
	type key struct {
		unit, machine string
	}
	published := make(map[key]UnitState, len(states))
	for _, s := range states {
		published[key{s.Unit, s.Machine}] = s
	}
	out := make(ClusterStates, len(placements))
	for _, p := range placements {
		st := Inactive
		if s, ok := published[key{p.Unit, p.Machine}]; ok && s.Hash == p.Hash {
			st = Loaded
			if s.Launched {
				st = Launched
			}
		}
		if cur, ok := out[p.Unit]; !ok || st.rank() > cur.rank() {
			out[p.Unit] = st
		}
	}
	return out
}
