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
// unit or machine fails the whole batch. A batch that changes nothing (placing
// what is already placed, unplacing what is not) is not a write.
func (r *Registry) ApplySchedule(ctx context.Context, fence core.Fence, ops []core.ScheduleOp) error {
	return write(ctx, r, "ApplySchedule", fence.Engine, func() error {
		if !r.currentLocked(fence) {
			return fmt.Errorf("fence %s/%d: %w", fence.Engine, fence.Epoch, core.ErrStaleFence)
		}
		for i, op := range ops {
			if err := validateOp(op); err != nil {
				return fmt.Errorf("op %d of %d: %w", i+1, len(ops), err)
			}
		}
		var touched []string
		for _, op := range ops {
			if r.applyOpLocked(op) {
				touched = append(touched, op.Machine)
				r.lists.placements.changed(pairKey{op.Unit, op.Machine})
			}
		}
		if len(touched) == 0 {
			return nil
		}
		r.rev++
		r.wakeLocked("")
		slices.Sort(touched)
		for _, m := range slices.Compact(touched) {
			r.wakeLocked(m)
		}
		return nil
	})
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
	}
	return true
}
