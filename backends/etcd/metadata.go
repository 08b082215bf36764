package etcd

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// PatchMetadata writes each op to meta/<machine>/<key> (an empty value is kept
// as a removal marker), in one transaction per WithMaxTxnOps ops; ops on the
// same key are reduced to the last one.
func (r *Registry) PatchMetadata(ctx context.Context, ops []core.MetadataOp) error {
	last := map[string]string{}
	for i, op := range ops {
		if err := checkComponent("machine ID", op.Machine); err != nil {
			return fmt.Errorf("etcd registry: PatchMetadata: op %d of %d: %w", i+1, len(ops), err)
		}
		if err := checkComponent("metadata key", op.Key); err != nil {
			return fmt.Errorf("etcd registry: PatchMetadata: op %d of %d: %w", i+1, len(ops), err)
		}
		last[r.keys.meta(op.Machine, op.Key)] = op.Value
	}
	puts := make([]clientv3.Op, 0, len(last))
	for _, k := range sortedKeys(last) {
		puts = append(puts, clientv3.OpPut(k, last[k]))
	}
	return r.call(ctx, "PatchMetadata", func(ctx context.Context) error {
		for _, part := range batches(puts, r.cfg.maxTxnOps) {
			if _, err := r.txn(ctx, nil, part, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// Machine returns the live machine id with its dynamic metadata merged: one
// request reading machine/<id> and meta/<id>/.
func (r *Registry) Machine(ctx context.Context, id string) (core.MachineState, error) {
	if err := checkComponent("machine ID", id); err != nil {
		return core.MachineState{}, fmt.Errorf("etcd registry: Machine: %w", err)
	}
	var out core.MachineState
	err := r.call(ctx, "Machine", func(ctx context.Context) error {
		ms, err := r.readMachines(ctx, r.keys.machine(id), r.keys.metaDir(id), false)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return fmt.Errorf("machine %s: %w", id, core.ErrNotPresent)
		}
		out = ms[0]
		return nil
	})
	return out, err
}

// readMachines reads the machines at machineKey (a prefix with prefix set) and
// the metadata under metaKey (always a prefix) in one request, and merges them.
// A listing (prefix set) leaves out the records it cannot read (see skip); a
// single machine's unreadable record fails with a *ValueError.
func (r *Registry) readMachines(ctx context.Context, machineKey, metaKey string, prefix bool) ([]core.MachineState, error) {
	var opts []clientv3.OpOption
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	resp, err := r.txn(ctx, nil, []clientv3.Op{
		clientv3.OpGet(machineKey, opts...),
		clientv3.OpGet(metaKey, clientv3.WithPrefix()),
	}, nil)
	if err != nil {
		return nil, err
	}
	dyn, err := r.decodeMeta(resp.Responses[1].GetResponseRange().GetKvs())
	if err != nil {
		return nil, err
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	out := make([]core.MachineState, 0, len(kvs))
	for _, kv := range kvs {
		key := string(kv.Key)
		id, err := r.keys.leaf(key, dirMachine)
		var v machineValue
		if err == nil {
			err = decode(key, kv.Value, &v)
		}
		if err != nil && !prefix {
			return nil, err
		}
		if err != nil {
			if err := r.skip(kv, err); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, core.MergeMetadata(v.state(id), dyn[id]))
	}
	return out, nil
}

// decodeMeta groups meta/<machine>/<key> values by machine, leaving out the
// keys it cannot read (see skip).
func (r *Registry) decodeMeta(kvs []*mvccpb.KeyValue) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, kv := range kvs {
		machine, key, err := r.keys.splitPair(string(kv.Key), dirMeta)
		if err != nil {
			if err := r.skip(kv, err); err != nil {
				return nil, err
			}
			continue
		}
		if out[machine] == nil {
			out[machine] = map[string]string{}
		}
		out[machine][key] = string(kv.Value)
	}
	return out, nil
}
