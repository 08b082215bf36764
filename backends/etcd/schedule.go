package etcd

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// Placements lists every placement, sorted by unit then machine: one range read
// over sched/.
func (r *Registry) Placements(ctx context.Context) ([]core.Placement, error) {
	ps, err := r.listPlacements(ctx, "Placements", r.keys.dir(dirSched))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ps, func(a, b core.Placement) int {
		return cmp.Or(strings.Compare(a.Unit, b.Unit), strings.Compare(a.Machine, b.Machine))
	})
	return ps, nil
}

// MachinePlacements lists the placements on one machine, sorted by unit: one
// range read over sched/<machine>/.
func (r *Registry) MachinePlacements(ctx context.Context, machine string) ([]core.Placement, error) {
	if err := checkComponent("machine ID", machine); err != nil {
		return nil, fmt.Errorf("etcd registry: MachinePlacements: %w", err)
	}
	return r.listPlacements(ctx, "MachinePlacements", r.keys.schedDir(machine))
}

// listPlacements reads every placement under dir, in key order.
func (r *Registry) listPlacements(ctx context.Context, op, dir string) ([]core.Placement, error) {
	return listPairs(ctx, r, op, dir, dirSched, func(machine, unit string, v placementValue) core.Placement {
		return core.Placement{Unit: unit, Machine: machine, Hash: v.Hash, TargetState: v.Target}
	})
}

// listPairs reads every key under dir, whose keys are kind/<machine>/<unit>,
// in key order: one range read. Each value is decoded into a V and turned into
// a T by mk.
func listPairs[V, T any](ctx context.Context, r *Registry, op, dir, kind string, mk func(machine, unit string, v V) T) ([]T, error) {
	var out []T
	err := r.call(ctx, op, func(ctx context.Context) error {
		resp, err := r.get(ctx, dir, clientv3.WithPrefix())
		if err != nil {
			return err
		}
		out = make([]T, 0, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			key := string(kv.Key)
			machine, unit, err := r.keys.splitPair(key, kind)
			if err != nil {
				return err
			}
			var v V
			if err := decode(key, kv.Value, &v); err != nil {
				return err
			}
			out = append(out, mk(machine, unit, v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ApplySchedule applies ops if fence is current, in transactions that each
// compare the leader key's create revision with fence.Epoch and its value with
// fence.Engine; otherwise it fails with core.ErrStaleFence. Ops on the same
// placement are reduced to the last one (as if applied in order). Up to the
// transaction limit (WithMaxTxnOps, 128 by default) the batch is all or
// nothing; a larger one is split, and each part is all or nothing (see
// "Atomicity" in the package documentation). An op of unknown kind or without
// a valid unit or machine fails the whole call before anything is written.
func (r *Registry) ApplySchedule(ctx context.Context, fence core.Fence, ops []core.ScheduleOp) error {
	txnOps, err := r.scheduleOps(ops)
	if err != nil {
		return fmt.Errorf("etcd registry: ApplySchedule: %w", err)
	}
	cmps := r.fenceCmps(fence)
	parts := batches(txnOps, r.cfg.maxTxnOps)
	return r.call(ctx, "ApplySchedule", func(ctx context.Context) error {
		if fence.Epoch <= 0 {
			return fmt.Errorf("fence %s/%d: %w", fence.Engine, fence.Epoch, core.ErrStaleFence)
		}
		for i, part := range parts {
			resp, err := r.txn(ctx, cmps, part, nil)
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				r.dropStaleLeadership(ctx, fence)
				return fmt.Errorf("fence %s/%d (after %d of %d transactions): %w", fence.Engine, fence.Epoch, i, len(parts), core.ErrStaleFence)
			}
		}
		return nil
	})
}

// scheduleOps validates ops and turns them into one put or delete per
// placement, sorted by key.
func (r *Registry) scheduleOps(ops []core.ScheduleOp) ([]clientv3.Op, error) {
	last := map[string]core.ScheduleOp{}
	for i, op := range ops {
		if err := checkOp(op); err != nil {
			return nil, fmt.Errorf("op %d of %d: %w", i+1, len(ops), err)
		}
		last[r.keys.sched(op.Machine, op.Unit)] = op
	}
	// Deletes go first: when a batch is split across transactions and the
	// engine is deposed half-way, every state in between is a subset of the old
	// schedule or of the new one, so no unit is ever placed twice.
	keys := sortedKeys(last)
	out := make([]clientv3.Op, 0, len(keys))
	for _, k := range keys {
		if last[k].Kind == core.OpUnplace {
			out = append(out, clientv3.OpDelete(k))
		}
	}
	for _, k := range keys {
		if op := last[k]; op.Kind == core.OpPlace {
			out = append(out, clientv3.OpPut(k, encode(placementValue{Hash: op.Hash, Target: op.TargetState})))
		}
	}
	return out, nil
}

func checkOp(op core.ScheduleOp) error {
	if op.Kind != core.OpPlace && op.Kind != core.OpUnplace {
		return fmt.Errorf("unknown op kind %d", op.Kind)
	}
	if err := checkComponent("unit name", op.Unit); err != nil {
		return err
	}
	if err := checkComponent("machine ID", op.Machine); err != nil {
		return fmt.Errorf("unit %s: %w", op.Unit, err)
	}
	return nil
}
