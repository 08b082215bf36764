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
	return listPairs(ctx, r, op, dir, dirSched, func(machine, unit string, v placementValue, modRev int64) core.Placement {
		return v.placement(unit, machine, modRev)
	})
}

// listPairs reads every key under dir, whose keys are kind/<machine>/<unit>,
// in key order: one range read. Each value is decoded into a V and turned into
// a T by mk; a key or value that cannot be read is left out (see skip).
func listPairs[V, T any](ctx context.Context, r *Registry, op, dir, kind string, mk func(machine, unit string, v V, modRev int64) T) ([]T, error) {
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
			var v V
			if err == nil {
				err = decode(key, kv.Value, &v)
			}
			if err != nil {
				if err := r.skip(kv, err); err != nil {
					return err
				}
				continue
			}
			out = append(out, mk(machine, unit, v, kv.ModRevision))
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
// fence's engine and session; otherwise it fails with core.ErrStaleFence. Ops
// on the same placement are reduced to the last one (as if applied in order).
// Each placement is written with its index key where/<unit>/<machine>; an
// OpPlace with a UnitRevision is a nested transaction that writes only if the
// unit's key (under unit/local/) still has that mod revision, and the units of
// those that did not write are returned. Up to the transaction limit
// (WithMaxTxnOps, 128 by default) the batch is all or nothing; a larger one is
// split, and each part is all or nothing (see "Atomicity" in the package
// documentation). An op of unknown kind or without a valid unit or machine
// fails the whole call before anything is written.
func (r *Registry) ApplySchedule(ctx context.Context, fence core.Fence, ops []core.ScheduleOp) ([]string, error) {
	items, err := r.scheduleItems(ops)
	if err != nil {
		return nil, fmt.Errorf("etcd registry: ApplySchedule: %w", err)
	}
	cmps := r.fenceCmps(fence)
	parts := scheduleBatches(items, r.cfg.maxTxnOps)
	var skipped []string
	err = r.call(ctx, "ApplySchedule", func(ctx context.Context) error {
		skipped = skipped[:0]
		if fence.Epoch <= 0 {
			return fmt.Errorf("fence %s/%d: %w", fence.Engine, fence.Epoch, core.ErrStaleFence)
		}
		for i, part := range parts {
			resp, err := r.txn(ctx, cmps, part.ops(), nil)
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				r.dropStaleLeadership(ctx, fence)
				return fmt.Errorf("fence %s/%d (after %d of %d transactions): %w", fence.Engine, fence.Epoch, i, len(parts), core.ErrStaleFence)
			}
			skipped = append(skipped, part.skipped(resp)...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(skipped)
	return slices.Compact(skipped), nil
}

// scheduleItem is the write of one placement: its operations, or one nested
// transaction (a conditional place), whose outcome names unit.
type scheduleItem struct {
	ops         []clientv3.Op
	conditional bool
	unit        string
}

// scheduleItems validates ops and turns them into one item per placement:
// removals first, then writes, each in key order.
func (r *Registry) scheduleItems(ops []core.ScheduleOp) ([]scheduleItem, error) {
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
	out := make([]scheduleItem, 0, len(keys))
	for _, k := range keys {
		if op := last[k]; op.Kind == core.OpUnplace {
			out = append(out, scheduleItem{ops: []clientv3.Op{clientv3.OpDelete(k), clientv3.OpDelete(r.keys.where(op.Unit, op.Machine))}})
		}
	}
	for _, k := range keys {
		op := last[k]
		if op.Kind != core.OpPlace {
			continue
		}
		value := encode(placementValue{Hash: op.Hash, Target: op.TargetState, Rev: op.UnitRevision})
		write := []clientv3.Op{clientv3.OpPut(k, value), clientv3.OpPut(r.keys.where(op.Unit, op.Machine), "")}
		if op.UnitRevision == 0 {
			out = append(out, scheduleItem{ops: write})
			continue
		}
		cond := clientv3.Compare(clientv3.ModRevision(r.keys.unit(op.Unit, false)), "=", op.UnitRevision)
		out = append(out, scheduleItem{ops: []clientv3.Op{clientv3.OpTxn([]clientv3.Cmp{cond}, write, nil)}, conditional: true, unit: op.Unit})
	}
	return out, nil
}

// scheduleBatch is the items of one transaction.
type scheduleBatch []scheduleItem

func (b scheduleBatch) ops() []clientv3.Op {
	var out []clientv3.Op
	for _, it := range b {
		out = append(out, it.ops...)
	}
	return out
}

// skipped lists the units of the conditional items whose nested transaction
// did not write, from the batch's committed response.
func (b scheduleBatch) skipped(resp *clientv3.TxnResponse) []string {
	var out []string
	i := 0
	for _, it := range b {
		if it.conditional && !resp.Responses[i].GetResponseTxn().GetSucceeded() {
			out = append(out, it.unit)
		}
		i += len(it.ops)
	}
	return out
}

// scheduleBatches splits items into transactions of at most n operations,
// never splitting an item. etcd counts a nested transaction's operations
// against what the outer one leaves of the limit, so a batch keeps room for
// them (2 operations).
func scheduleBatches(items []scheduleItem, n int) []scheduleBatch {
	limit := max(n-2, 2)
	out := []scheduleBatch{nil}
	size := 0
	for _, it := range items {
		if size+len(it.ops) > limit && size > 0 {
			out = append(out, nil)
			size = 0
		}
		out[len(out)-1] = append(out[len(out)-1], it)
		size += len(it.ops)
	}
	return out
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
