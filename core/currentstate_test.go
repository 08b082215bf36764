package core

import "testing"

// TestCurrentState is fleet's table (spec §5.6) on our values: no placement or
// no state from the placed machine is inactive; a state from it is loaded, or
// launched when the agent holds the unit launched.
func TestCurrentState(t *testing.T) {
	const h, old = Hash("h1"), Hash("h0")
	on := func(m string) []Placement {
		return []Placement{{Unit: "a.service", Machine: m, Hash: h, TargetState: Launched}}
	}
	st := func(m string, hash Hash, launched bool) UnitState {
		return UnitState{Unit: "a.service", Machine: m, Hash: hash, LoadState: LoadLoaded, ActiveState: ActiveActive, Launched: launched}
	}
	for _, c := range []struct {
		name       string
		placements []Placement
		states     []UnitState
		want       JobState
	}{
		{"not placed", nil, nil, Inactive},
		{"not placed, a stale state elsewhere", nil, []UnitState{st("m2", h, true)}, Inactive},
		{"placed, no state yet", on("m1"), nil, Inactive},
		{"placed, state from another machine only", on("m1"), []UnitState{st("m2", h, true)}, Inactive},
		{"placed, state of the old contents", on("m1"), []UnitState{st("m1", old, true)}, Inactive},
		{"placed, loaded there", on("m1"), []UnitState{st("m1", h, false)}, Loaded},
		{"placed, launched there", on("m1"), []UnitState{st("m1", h, true)}, Launched},
		{"another unit's state", on("m1"), []UnitState{{Unit: "b.service", Machine: "m1", Hash: h, Launched: true}}, Inactive},
		{"two placements, highest wins", append(on("m1"), on("m2")...), []UnitState{st("m1", h, false), st("m2", h, true)}, Launched},
	} {
		if got := CurrentState(c.placements, c.states); got != c.want {
			t.Errorf("%s: CurrentState = %s, want %s", c.name, got, c.want)
		}
		if got := CurrentStates(c.placements, c.states).Of("a.service"); got != c.want {
			t.Errorf("%s: CurrentStates = %s, want %s", c.name, got, c.want)
		}
	}
}
