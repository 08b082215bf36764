package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/fleet-rebuild/fleet/core"
)

// PublishUnitStates writes states and then deletes the states of the units in
// removed, for machineID only; ErrNotPresent unless session holds the machine's
// live presence. A state whose Machine is empty is taken to be machineID's; one
// naming another machine fails the call and nothing is written. Publishing what
// is already published is not a write. States do not wake any scope.
func (r *Registry) PublishUnitStates(ctx context.Context, machineID, session string, states []core.UnitState, removed []string) error {
	return write(ctx, r, "PublishUnitStates", machineID, func() error {
		if p, ok := r.machines[machineID]; !ok || p.session != session {
			return fmt.Errorf("machine %s session %s: %w", machineID, session, core.ErrNotPresent)
		}
		for _, s := range states {
			if s.Unit == "" {
				return fmt.Errorf("machine %s: state has no unit", machineID)
			}
			if s.Machine != "" && s.Machine != machineID {
				return fmt.Errorf("machine %s: state of unit %s names machine %s", machineID, s.Unit, s.Machine)
			}
		}
		on := r.states[machineID]
		if on == nil {
			on = map[string]core.UnitState{}
		}
		changed := false
		for _, s := range states {
			s.Machine = machineID
			if old, ok := on[s.Unit]; !ok || old != s {
				on[s.Unit] = s
				r.lists.states.changed(pairKey{s.Unit, machineID})
				changed = true
			}
		}
		for _, name := range removed {
			if _, ok := on[name]; ok {
				delete(on, name)
				r.lists.states.changed(pairKey{name, machineID})
				changed = true
			}
		}
		if len(on) > 0 {
			r.states[machineID] = on
		} else {
			delete(r.states, machineID)
		}
		if changed {
			r.rev++
		}
		return nil
	})
}

// UnitStates lists every published state, sorted by unit then machine.
func (r *Registry) UnitStates(ctx context.Context) ([]core.UnitState, error) {
	return call(ctx, r, "UnitStates", "", func() ([]core.UnitState, error) {
		return slices.Clone(r.lists.states.get()), nil
	})
}
