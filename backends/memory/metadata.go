package memory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/fleet-rebuild/fleet/core"
)

// PatchMetadata applies ops in order, all or nothing. A change wakes the
// engine and the machines whose metadata changed.
func (r *Registry) PatchMetadata(ctx context.Context, ops []core.MetadataOp) error {
	return write(ctx, r, "PatchMetadata", "", func() error {
		for i, op := range ops {
			if op.Machine == "" || op.Key == "" {
				return fmt.Errorf("op %d of %d: %w", i+1, len(ops), errors.New("metadata op has no machine or key"))
			}
		}
		changed := map[string]bool{}
		for _, op := range ops {
			m := r.meta[op.Machine]
			if m == nil {
				m = map[string]string{}
				r.meta[op.Machine] = m
			}
			if old, ok := m[op.Key]; ok && old == op.Value {
				continue
			}
			m[op.Key] = op.Value
			changed[op.Machine] = true
		}
		if len(changed) == 0 {
			return nil
		}
		r.rev++
		r.wakeLocked("")
		for _, id := range slices.Sorted(maps.Keys(changed)) {
			r.wakeLocked(id)
		}
		return nil
	})
}

// Machine returns the live machine id with its merged metadata.
func (r *Registry) Machine(ctx context.Context, id string) (core.MachineState, error) {
	return call(ctx, r, "Machine", id, func() (core.MachineState, error) {
		p, ok := r.machines[id]
		if !ok {
			return core.MachineState{}, fmt.Errorf("machine %s: %w", id, core.ErrNotPresent)
		}
		return r.mergedLocked(p.state), nil
	})
}

// mergedLocked is a copy of m with its dynamic metadata applied.
func (r *Registry) mergedLocked(m core.MachineState) core.MachineState {
	return core.MergeMetadata(cloneMachine(m), r.meta[m.ID])
}
