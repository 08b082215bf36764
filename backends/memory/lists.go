package memory

import (
	"iter"
	"maps"
	"strings"

	"github.com/fleet-rebuild/fleet/core"
)

// lists are the sorted listings the read methods copy out.
type lists struct {
	units      sortedList[string, core.Unit]
	globals    sortedList[string, core.Unit]
	placements sortedList[pairKey, core.Placement]
	machines   sortedList[string, core.MachineState]
	states     sortedList[pairKey, core.UnitState]
}

// pairKey orders placements and unit states: by unit, then machine.
type pairKey struct{ unit, machine string }

func comparePairs(a, b pairKey) int {
	if c := strings.Compare(a.unit, b.unit); c != 0 {
		return c
	}
	return strings.Compare(a.machine, b.machine)
}

// initLists wires each sorted listing to the store it lists. The functions run
// with the registry locked.
func (r *Registry) initLists() {
	unitName := func(u core.Unit) string { return u.Name }
	r.lists.units = sortedList[string, core.Unit]{
		key: unitName, compare: strings.Compare,
		all: func() iter.Seq[core.Unit] { return maps.Values(r.units) },
		lookup: func(name string) (core.Unit, bool) {
			u, ok := r.units[name]
			return u, ok
		},
	}
	r.lists.globals = sortedList[string, core.Unit]{
		key: unitName, compare: strings.Compare,
		all: func() iter.Seq[core.Unit] {
			return func(yield func(core.Unit) bool) {
				for name := range r.globalNames {
					if !yield(r.units[name]) {
						return
					}
				}
			}
		},
		lookup: func(name string) (core.Unit, bool) {
			u, ok := r.units[name]
			return u, ok && u.Global
		},
	}
	r.lists.placements = sortedList[pairKey, core.Placement]{
		key:     func(p core.Placement) pairKey { return pairKey{p.Unit, p.Machine} },
		compare: comparePairs,
		all: func() iter.Seq[core.Placement] {
			return func(yield func(core.Placement) bool) {
				for _, on := range r.byMachine {
					for _, p := range on {
						if !yield(p) {
							return
						}
					}
				}
			}
		},
		lookup: func(k pairKey) (core.Placement, bool) {
			p, ok := r.byMachine[k.machine][k.unit]
			return p, ok
		},
	}
	r.lists.machines = sortedList[string, core.MachineState]{
		key:     func(m core.MachineState) string { return m.ID },
		compare: strings.Compare,
		all: func() iter.Seq[core.MachineState] {
			return func(yield func(core.MachineState) bool) {
				for _, p := range r.machines {
					if !yield(p.state) {
						return
					}
				}
			}
		},
		lookup: func(id string) (core.MachineState, bool) {
			p, ok := r.machines[id]
			if !ok {
				return core.MachineState{}, false
			}
			return p.state, true
		},
	}
	r.lists.states = sortedList[pairKey, core.UnitState]{
		key:     func(s core.UnitState) pairKey { return pairKey{s.Unit, s.Machine} },
		compare: comparePairs,
		all: func() iter.Seq[core.UnitState] {
			return func(yield func(core.UnitState) bool) {
				for _, on := range r.states {
					for _, s := range on {
						if !yield(s) {
							return
						}
					}
				}
			}
		},
		lookup: func(k pairKey) (core.UnitState, bool) {
			s, ok := r.states[k.machine][k.unit]
			return s, ok
		},
	}
}
