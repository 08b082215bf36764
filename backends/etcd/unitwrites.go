package etcd

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// unitRecord is a unit's key-value and the index of its placements, read in
// one request, so that a write can mirror the unit into its placements and
// compare everything it read.
type unitRecord struct {
	name   string
	kv     *mvccpb.KeyValue   // nil if the unit does not exist
	global bool               // the unit's key is under unit/global/
	where  []*mvccpb.KeyValue // where/<unit>/<machine>, one per placement
	rev    int64              // the store's revision when read
}

// readUnitRecord reads the unit name and its placement index in one request.
func (r *Registry) readUnitRecord(ctx context.Context, name string) (unitRecord, error) {
	resp, err := r.txn(ctx, nil, []clientv3.Op{
		clientv3.OpGet(r.keys.unit(name, false)),
		clientv3.OpGet(r.keys.unit(name, true)),
		clientv3.OpGet(r.keys.whereDir(name), clientv3.WithPrefix()),
	}, nil)
	if err != nil {
		return unitRecord{}, err
	}
	rec := unitRecord{name: name, where: resp.Responses[2].GetResponseRange().GetKvs(), rev: resp.Header.Revision}
	for i, g := range []bool{false, true} {
		if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) == 1 {
			rec.kv, rec.global = kvs[0], g
		}
	}
	return rec, nil
}

// unchanged holds iff the unit and its placement index are as read: the unit's
// key and each index key keep their mod revisions, and no index key was added.
func (r *Registry) unchanged(rec unitRecord) []clientv3.Cmp {
	key := r.keys.unit(rec.name, rec.global)
	dir := r.keys.whereDir(rec.name)
	cmps := []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(key), "=", rec.kv.ModRevision),
		clientv3.Compare(clientv3.ModRevision(dir), "<", rec.rev+1).WithRange(prefixEnd(dir)),
	}
	for _, w := range rec.where {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(w.Key)), "=", w.ModRevision))
	}
	return cmps
}

// mirrorOps rewrites every placement of the unit with hash and target; the
// placements take the unit's new revision, which is the transaction's.
func (r *Registry) mirrorOps(rec unitRecord, hash core.Hash, target core.JobState) ([]clientv3.Op, error) {
	value := encode(placementValue{Hash: hash, Target: target, Own: true})
	ops := make([]clientv3.Op, 0, len(rec.where))
	for _, w := range rec.where {
		machine, err := r.keys.leaf(string(w.Key), dirWhere+rec.name+"/")
		if err != nil {
			return nil, err
		}
		ops = append(ops, clientv3.OpPut(r.keys.sched(machine, rec.name), value))
	}
	return ops, nil
}

// SetTargetState changes a unit's desired state and mirrors it into the unit's
// placements, in one transaction that compares the unit and its placement
// index with what was read; core.ErrUnitNotFound if absent. Setting the state
// it already has writes nothing.
func (r *Registry) SetTargetState(ctx context.Context, name string, state core.JobState) error {
	if err := checkComponent("unit name", name); err != nil {
		return fmt.Errorf("etcd registry: SetTargetState: %w", err)
	}
	return r.rewriteUnit(ctx, "SetTargetState", name, func(rec unitRecord, u core.Unit) ([]clientv3.Op, error) {
		if u.TargetState == state {
			return nil, nil
		}
		ops, err := r.mirrorOps(rec, u.Hash, state)
		if err != nil {
			return nil, err
		}
		key := r.keys.unit(name, rec.global)
		return append(ops, clientv3.OpPut(key, encode(unitValue{Hash: u.Hash, Target: state}))), nil
	})
}

// ReplaceUnit replaces the contents, Global flag and target state of the unit
// u.Name, mirrors hash and target state into its placements, moves its
// contents reference (storing the new contents unless present, deleting the
// old ones if no unit refers to them any more), in one transaction;
// core.ErrUnitNotFound if absent.
func (r *Registry) ReplaceUnit(ctx context.Context, u core.Unit, contents []byte) error {
	if err := checkComponent("unit name", u.Name); err != nil {
		return fmt.Errorf("etcd registry: ReplaceUnit: %w", err)
	}
	if err := checkComponent("unit hash", string(u.Hash)); err != nil {
		return fmt.Errorf("etcd registry: ReplaceUnit: unit %s: %w", u.Name, err)
	}
	return r.rewriteUnit(ctx, "ReplaceUnit", u.Name, func(rec unitRecord, old core.Unit) ([]clientv3.Op, error) {
		ops, err := r.mirrorOps(rec, u.Hash, u.TargetState)
		if err != nil {
			return nil, err
		}
		if rec.global != u.Global {
			ops = append(ops, clientv3.OpDelete(r.keys.unit(u.Name, rec.global)))
		}
		ops = append(ops, clientv3.OpPut(r.keys.unit(u.Name, u.Global), encode(unitValue{Hash: u.Hash, Target: u.TargetState})))
		if old.Hash == u.Hash {
			return ops, nil
		}
		body := r.keys.body(u.Hash)
		ops = append(ops, r.unrefOps(old)...)
		return append(ops,
			clientv3.OpPut(r.keys.ref(u.Hash, u.Name), ""),
			clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(body), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(body, string(contents))}, nil)), nil
	})
}

// rewriteUnit reads the unit name with its placement index, asks change for
// the operations that rewrite it (none: nothing to do), and commits them if
// nothing read has changed meanwhile, trying again a few rounds if it has.
func (r *Registry) rewriteUnit(ctx context.Context, op, name string, change func(unitRecord, core.Unit) ([]clientv3.Op, error)) error {
	return r.call(ctx, op, func(ctx context.Context) error {
		for range conflictRounds {
			rec, err := r.readUnitRecord(ctx, name)
			if err != nil {
				return err
			}
			if rec.kv == nil {
				return fmt.Errorf("unit %s: %w", name, core.ErrUnitNotFound)
			}
			u, err := decodeUnit(rec.kv, name, rec.global)
			if err != nil {
				return err
			}
			ops, err := change(rec, u)
			if err != nil || len(ops) == 0 {
				return err
			}
			resp, err := r.txn(ctx, r.unchanged(rec), ops, nil)
			if err != nil {
				return err
			}
			if resp.Succeeded {
				return nil
			}
		}
		return fmt.Errorf("unit %s kept changing during the update: %w", name, core.ErrUnavailable)
	})
}
