package etcd

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// CreateUnit stores u at unit/local/<name> or unit/global/<name>, its contents
// at body/<hash> unless already there, and a reference ref/<hash>/<name>, in one
// transaction that fails with core.ErrUnitExists if either unit key exists.
// If an attempt's reply was lost and the retry finds this very unit stored, the
// call succeeds.
func (r *Registry) CreateUnit(ctx context.Context, u core.Unit, contents []byte) error {
	if err := checkComponent("unit name", u.Name); err != nil {
		return fmt.Errorf("etcd registry: CreateUnit: %w", err)
	}
	if err := checkComponent("unit hash", string(u.Hash)); err != nil {
		return fmt.Errorf("etcd registry: CreateUnit: unit %s: %w", u.Name, err)
	}
	key := r.keys.unit(u.Name, u.Global)
	value := encode(unitValue{Hash: u.Hash, Target: u.TargetState})
	body := r.keys.body(u.Hash)
	sent := false // an earlier attempt sent the transaction
	return r.call(ctx, "CreateUnit", func(ctx context.Context) error {
		retried := sent
		sent = true
		resp, err := r.txn(ctx,
			[]clientv3.Cmp{
				clientv3.Compare(clientv3.CreateRevision(r.keys.unit(u.Name, false)), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(r.keys.unit(u.Name, true)), "=", 0),
			},
			[]clientv3.Op{
				clientv3.OpPut(key, value),
				clientv3.OpPut(r.keys.ref(u.Hash, u.Name), ""),
				clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(body), "=", 0)},
					[]clientv3.Op{clientv3.OpPut(body, string(contents))}, nil),
			},
			[]clientv3.Op{clientv3.OpGet(key)})
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); retried && len(kvs) == 1 && string(kvs[0].Value) == value {
			return nil
		}
		return fmt.Errorf("unit %s: %w", u.Name, core.ErrUnitExists)
	})
}

// DestroyUnit removes a unit and its reference, and its contents if no other
// unit refers to them, in one transaction; core.ErrUnitNotFound if absent. Its
// placements stay. If the reply to a delete was lost and the retry finds the
// unit gone, or re-created by someone else (another create revision), the call
// succeeds and leaves the new unit alone. A unit whose value cannot be decoded
// is removed too, without touching contents.
func (r *Registry) DestroyUnit(ctx context.Context, name string) error {
	if err := checkComponent("unit name", name); err != nil {
		return fmt.Errorf("etcd registry: DestroyUnit: %w", err)
	}
	var sent int64 // the create revision of the unit an earlier attempt sent a delete for
	return r.call(ctx, "DestroyUnit", func(ctx context.Context) error {
		for range conflictRounds {
			kv, global, err := r.readUnit(ctx, name)
			if err != nil {
				return err
			}
			if sent != 0 && (kv == nil || kv.CreateRevision != sent) {
				return nil
			}
			if kv == nil {
				return fmt.Errorf("unit %s: %w", name, core.ErrUnitNotFound)
			}
			key := r.keys.unit(name, global)
			ops := []clientv3.Op{clientv3.OpDelete(key)}
			if u, err := decodeUnit(kv, name, global); err == nil {
				ops = append(ops, r.unrefOps(u)...)
			}
			sent = kv.CreateRevision
			resp, err := r.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)}, ops, nil)
			if err != nil {
				return err
			}
			if resp.Succeeded {
				return nil
			}
		}
		return fmt.Errorf("unit %s kept changing during destroy: %w", name, core.ErrUnavailable)
	})
}

// unrefOps deletes u's reference to its contents and, in a nested transaction
// whose comparisons see the store before this transaction, the contents if no
// other reference is left: the ranges before and after u's reference are empty.
func (r *Registry) unrefOps(u core.Unit) []clientv3.Op {
	dir, ref := r.keys.refDir(u.Hash), r.keys.ref(u.Hash, u.Name)
	return []clientv3.Op{
		clientv3.OpDelete(ref),
		clientv3.OpTxn([]clientv3.Cmp{
			clientv3.Compare(clientv3.Version(dir), "=", 0).WithRange(ref),
			clientv3.Compare(clientv3.Version(ref+"\x00"), "=", 0).WithRange(prefixEnd(dir)),
		}, []clientv3.Op{clientv3.OpDelete(r.keys.body(u.Hash))}, nil),
	}
}

// readUnit reads both possible keys of a unit in one request; kv is nil if the
// unit does not exist.
func (r *Registry) readUnit(ctx context.Context, name string) (kv *mvccpb.KeyValue, global bool, err error) {
	resp, err := r.txn(ctx, nil, []clientv3.Op{
		clientv3.OpGet(r.keys.unit(name, false)),
		clientv3.OpGet(r.keys.unit(name, true)),
	}, nil)
	if err != nil {
		return nil, false, err
	}
	for i, g := range []bool{false, true} {
		if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) == 1 {
			return kvs[0], g, nil
		}
	}
	return nil, false, nil
}

// Unit returns the unit name (one request reading both possible keys);
// core.ErrUnitNotFound if absent.
func (r *Registry) Unit(ctx context.Context, name string) (core.Unit, error) {
	if err := checkComponent("unit name", name); err != nil {
		return core.Unit{}, fmt.Errorf("etcd registry: Unit: %w", err)
	}
	var u core.Unit
	err := r.call(ctx, "Unit", func(ctx context.Context) error {
		kv, global, err := r.readUnit(ctx, name)
		if err != nil {
			return err
		}
		if kv == nil {
			return fmt.Errorf("unit %s: %w", name, core.ErrUnitNotFound)
		}
		u, err = decodeUnit(kv, name, global)
		return err
	})
	return u, err
}

// Units lists every unit, sorted by name: one range read over unit/.
func (r *Registry) Units(ctx context.Context) ([]core.Unit, error) {
	us, err := r.listUnits(ctx, "Units", dirUnit)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(us, func(a, b core.Unit) int { return strings.Compare(a.Name, b.Name) })
	return us, nil
}

// GlobalUnits lists the units with Global set, sorted by name: one range read
// over unit/global/.
func (r *Registry) GlobalUnits(ctx context.Context) ([]core.Unit, error) {
	return r.listUnits(ctx, "GlobalUnits", dirGlobal)
}

// listUnits reads every unit under dir, in key order, leaving out those it
// cannot read (see skip).
func (r *Registry) listUnits(ctx context.Context, op, dir string) ([]core.Unit, error) {
	var out []core.Unit
	err := r.call(ctx, op, func(ctx context.Context) error {
		resp, err := r.get(ctx, r.keys.dir(dir), clientv3.WithPrefix())
		if err != nil {
			return err
		}
		out = make([]core.Unit, 0, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			u, err := r.unitFromKV(kv)
			if err != nil {
				if err := r.skip(kv, err); err != nil {
					return err
				}
				continue
			}
			out = append(out, u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unitFromKV decodes a key under unit/.
func (r *Registry) unitFromKV(kv *mvccpb.KeyValue) (core.Unit, error) {
	key := string(kv.Key)
	if name, err := r.keys.leaf(key, dirGlobal); err == nil {
		return decodeUnit(kv, name, true)
	}
	name, err := r.keys.leaf(key, dirLocal)
	if err != nil {
		return core.Unit{}, &ValueError{Key: key, Reason: "want " + r.keys.dir(dirLocal) + "<name> or " + r.keys.dir(dirGlobal) + "<name>"}
	}
	return decodeUnit(kv, name, false)
}

// UnitContents returns the contents stored at body/<hash>; core.ErrUnitNotFound
// if none.
func (r *Registry) UnitContents(ctx context.Context, hash core.Hash) ([]byte, error) {
	if err := checkComponent("unit hash", string(hash)); err != nil {
		return nil, fmt.Errorf("etcd registry: UnitContents: %w", err)
	}
	var out []byte
	err := r.call(ctx, "UnitContents", func(ctx context.Context) error {
		resp, err := r.get(ctx, r.keys.body(hash))
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("contents %s: %w", hash, core.ErrUnitNotFound)
		}
		out = resp.Kvs[0].Value
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
