package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/fleet-rebuild/fleet/core"
)

// CreateUnit stores u and its contents under u.Hash; ErrUnitExists if the name is
// taken. Contents already stored under the same hash are kept as they are.
func (r *Registry) CreateUnit(ctx context.Context, u core.Unit, contents []byte) error {
	return write(ctx, r, "CreateUnit", "", func() error {
		if u.Name == "" {
			return errors.New("unit has no name")
		}
		if _, ok := r.units[u.Name]; ok {
			return fmt.Errorf("unit %s: %w", u.Name, core.ErrUnitExists)
		}
		if _, ok := r.contents[u.Hash]; !ok {
			r.contents[u.Hash] = bytes.Clone(contents)
		}
		r.refLocked(u.Hash)
		r.units[u.Name] = u
		r.unitChangedLocked(u.Name, false, u.Global)
		return nil
	})
}

// ReplaceUnit replaces the contents, Global flag and target state of the unit
// u.Name and mirrors hash and target state into its placements, as one write;
// ErrUnitNotFound if absent.
func (r *Registry) ReplaceUnit(ctx context.Context, u core.Unit, contents []byte) error {
	return write(ctx, r, "ReplaceUnit", "", func() error {
		old, ok := r.units[u.Name]
		if !ok {
			return fmt.Errorf("unit %s: %w", u.Name, core.ErrUnitNotFound)
		}
		if _, ok := r.contents[u.Hash]; !ok {
			r.contents[u.Hash] = bytes.Clone(contents)
		}
		r.refLocked(u.Hash)
		r.unrefLocked(old.Hash)
		r.units[u.Name] = u
		r.unitChangedLocked(u.Name, old.Global, u.Global)
		r.mirrorLocked(r.units[u.Name])
		return nil
	})
}

// DestroyUnit removes a unit; ErrUnitNotFound if absent. Its placements stay, and
// so do its contents while a placement uses them.
func (r *Registry) DestroyUnit(ctx context.Context, name string) error {
	return write(ctx, r, "DestroyUnit", "", func() error {
		u, ok := r.units[name]
		if !ok {
			return fmt.Errorf("unit %s: %w", name, core.ErrUnitNotFound)
		}
		delete(r.units, name)
		r.unrefLocked(u.Hash)
		r.unitChangedLocked(name, u.Global, false)
		return nil
	})
}

// SetTargetState changes a unit's desired state and mirrors it into the unit's
// placements, as one write; ErrUnitNotFound if absent. Setting the state it
// already has is not a change.
func (r *Registry) SetTargetState(ctx context.Context, name string, state core.JobState) error {
	return write(ctx, r, "SetTargetState", "", func() error {
		u, ok := r.units[name]
		if !ok {
			return fmt.Errorf("unit %s: %w", name, core.ErrUnitNotFound)
		}
		if u.TargetState == state {
			return nil
		}
		u.TargetState = state
		r.units[name] = u
		r.unitChangedLocked(name, u.Global, u.Global)
		r.mirrorLocked(r.units[name])
		return nil
	})
}

// Unit returns the unit name; ErrUnitNotFound if absent.
func (r *Registry) Unit(ctx context.Context, name string) (core.Unit, error) {
	return call(ctx, r, "Unit", "", func() (core.Unit, error) {
		u, ok := r.units[name]
		if !ok {
			return core.Unit{}, fmt.Errorf("unit %s: %w", name, core.ErrUnitNotFound)
		}
		return u, nil
	})
}

// Units lists every unit, sorted by name.
func (r *Registry) Units(ctx context.Context) ([]core.Unit, error) {
	return call(ctx, r, "Units", "", func() ([]core.Unit, error) {
		return slices.Clone(r.lists.units.get()), nil
	})
}

// GlobalUnits lists the units with Global set, sorted by name.
func (r *Registry) GlobalUnits(ctx context.Context) ([]core.Unit, error) {
	return call(ctx, r, "GlobalUnits", "", func() ([]core.Unit, error) {
		return slices.Clone(r.lists.globals.get()), nil
	})
}

// UnitContents returns a copy of the contents stored under hash; ErrUnitNotFound
// if no unit or placement uses that hash.
func (r *Registry) UnitContents(ctx context.Context, hash core.Hash) ([]byte, error) {
	return call(ctx, r, "UnitContents", "", func() ([]byte, error) {
		b, ok := r.contents[hash]
		if !ok {
			return nil, fmt.Errorf("contents %s: %w", hash, core.ErrUnitNotFound)
		}
		return bytes.Clone(b), nil
	})
}

// unitChangedLocked records a write to the unit name, whose Global flag was
// wasGlobal before and isGlobal after (false for a unit that does not exist):
// a new revision, stored in the unit's Revision, the change noted in the
// listings, and wake-ups for the engine and, for a global unit, every agent.
func (r *Registry) unitChangedLocked(name string, wasGlobal, isGlobal bool) {
	r.rev++
	if u, ok := r.units[name]; ok {
		u.Revision = r.rev
		r.units[name] = u
	}
	r.lists.units.changed(name)
	r.wakeLocked("")
	if !wasGlobal && !isGlobal {
		return
	}
	if isGlobal {
		r.globalNames[name] = struct{}{}
	} else {
		delete(r.globalNames, name)
	}
	r.lists.globals.changed(name)
	r.wakeMachinesLocked()
}

// mirrorLocked copies u's hash, target state and revision into its
// placements, waking the machines whose placements changed.
func (r *Registry) mirrorLocked(u core.Unit) {
	for _, m := range slices.Sorted(maps.Keys(r.byUnit[u.Name])) {
		p := r.byMachine[m][u.Name]
		r.refLocked(u.Hash)
		r.unrefLocked(p.Hash)
		p.Hash, p.TargetState, p.UnitRevision = u.Hash, u.TargetState, u.Revision
		r.byMachine[m][u.Name] = p
		r.lists.placements.changed(pairKey{u.Name, m})
		r.wakeLocked(m)
	}
}

// refLocked records one more unit or placement using hash.
func (r *Registry) refLocked(h core.Hash) { r.refs[h]++ }

// unrefLocked records one fewer user of hash and drops its contents when none
// is left.
func (r *Registry) unrefLocked(h core.Hash) {
	r.refs[h]--
	if r.refs[h] <= 0 {
		delete(r.refs, h)
		delete(r.contents, h)
	}
}
