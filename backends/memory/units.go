package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
		r.unitChangedLocked(u)
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
		r.unitChangedLocked(u)
		return nil
	})
}

// SetTargetState changes a unit's desired state; ErrUnitNotFound if absent.
// Setting the state it already has is not a change.
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
		r.unitChangedLocked(u)
		return nil
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

// unitChangedLocked records a write to unit u: a new revision, the change noted
// in the listings, and wake-ups for the engine and, for a global unit, every
// agent.
func (r *Registry) unitChangedLocked(u core.Unit) {
	r.rev++
	r.lists.units.changed(u.Name)
	r.wakeLocked("")
	if !u.Global {
		return
	}
	if _, ok := r.units[u.Name]; ok {
		r.globalNames[u.Name] = struct{}{}
	} else {
		delete(r.globalNames, u.Name)
	}
	r.lists.globals.changed(u.Name)
	r.wakeMachinesLocked()
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
