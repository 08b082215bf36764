package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fleet-rebuild/fleet/core"
)

// Placements lists every placement, sorted by unit then machine.
func (r *Registry) Placements(ctx context.Context) ([]core.Placement, error) {
	return call(ctx, r, "Placements", "", func() ([]core.Placement, error) {
		return slices.Clone(r.lists.placements.get()), nil
	})
}

// MachinePlacements lists the placements on one machine, sorted by unit, in time
// proportional to their number.
func (r *Registry) MachinePlacements(ctx context.Context, machine string) ([]core.Placement, error) {
	return call(ctx, r, "MachinePlacements", machine, func() ([]core.Placement, error) {
		on := r.byMachine[machine]
		out := make([]core.Placement, 0, len(on))
		for _, p := range on {
			out = append(out, p)
		}
		slices.SortFunc(out, func(a, b core.Placement) int { return strings.Compare(a.Unit, b.Unit) })
		return out, nil
	})
}

// ApplySchedule applies ops in order, all or nothing, if fence is the current
// leadership fence; otherwise ErrStaleFence. An op of unknown kind or without a
// unit or machine fails the whole batch. An OpPlace whose UnitRevision is set
// and is not the unit's current revision is skipped and its unit returned. A
// batch that changes nothing (placing what is already placed, unplacing what is
// not) is not a write.
func (r *Registry) ApplySchedule(ctx context.Context, fence core.Fence, ops []core.ScheduleOp) ([]string, error) {
	return call(ctx, r, "ApplySchedule", fence.Engine, func() ([]string, error) {
		if !r.currentLocked(fence) {
			return nil, fmt.Errorf("fence %s/%d: %w", fence.Engine, fence.Epoch, core.ErrStaleFence)
		}
		for i, op := range ops {
			if err := validateOp(op); err != nil {
				return nil, fmt.Errorf("op %d of %d: %w", i+1, len(ops), err)
			}
		}
		var touched, skipped []string
		for _, op := range ops {
			if r.staleLocked(op) {
				skipped = append(skipped, op.Unit)
				continue
			}
			if r.applyOpLocked(op) {
				touched = append(touched, op.Machine)
				r.lists.placements.changed(pairKey{op.Unit, op.Machine})
			}
		}
		slices.Sort(skipped)
		skipped = slices.Compact(skipped)
		if len(touched) == 0 {
			return skipped, nil
		}
		r.rev++
		r.wakeLocked("")
		slices.Sort(touched)
		for _, m := range slices.Compact(touched) {
			r.wakeLocked(m)
		}
		return skipped, nil
	})
}

// staleLocked reports whether op is a conditional OpPlace whose unit has changed
// (or is gone, or global) since the revision the engine planned from.
func (r *Registry) staleLocked(op core.ScheduleOp) bool {
	if op.Kind != core.OpPlace || op.UnitRevision == 0 {
		return false
	}
	u, ok := r.units[op.Unit]
	return !ok || u.Global || u.Revision != op.UnitRevision
}

func validateOp(op core.ScheduleOp) error {
	switch {
	case op.Kind != core.OpPlace && op.Kind != core.OpUnplace:
		return fmt.Errorf("unknown op kind %d", op.Kind)
	case op.Unit == "":
		return errors.New("op has no unit")
	case op.Machine == "":
		return fmt.Errorf("op on unit %s has no machine", op.Unit)
	}
	return nil
}

// applyOpLocked applies one valid op and reports whether it changed anything.
func (r *Registry) applyOpLocked(op core.ScheduleOp) bool {
	on := r.byMachine[op.Machine]
	old, had := on[op.Unit]
	switch op.Kind {
	case core.OpPlace:
		if had && old == op.Placement {
			return false
		}
		if on == nil {
			on = map[string]core.Placement{}
			r.byMachine[op.Machine] = on
		}
		if r.byUnit[op.Unit] == nil {
			r.byUnit[op.Unit] = map[string]struct{}{}
		}
		r.byUnit[op.Unit][op.Machine] = struct{}{}
		r.refLocked(op.Hash)
		if had {
			r.unrefLocked(old.Hash)
		}
		on[op.Unit] = op.Placement
	case core.OpUnplace:
		if !had {
			return false
		}
		r.unrefLocked(old.Hash)
		delete(on, op.Unit)
		if len(on) == 0 {
			delete(r.byMachine, op.Machine)
		}
		delete(r.byUnit[op.Unit], op.Machine)
		if len(r.byUnit[op.Unit]) == 0 {
			delete(r.byUnit, op.Unit)
		}
	}
	return true
}
