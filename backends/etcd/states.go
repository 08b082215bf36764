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

// PublishUnitStates writes states and then deletes the states of the units in
// removed (a unit in both ends up deleted), for machineID only, each at
// state/<machine>/<unit> under the lease of the machine's presence, so that they
// vanish with it. It fails with core.ErrNotPresent unless session holds the
// machine's live presence. A state whose Machine is empty is taken to be
// machineID's; one naming another machine fails the call and nothing is
// written. More than the transaction limit of changes are written in several
// transactions, each checking the presence (see "Atomicity" in the package
// documentation).
func (r *Registry) PublishUnitStates(ctx context.Context, machineID, session string, states []core.UnitState, removed []string) error {
	ops, err := r.stateOps(machineID, states, removed)
	if err != nil {
		return fmt.Errorf("etcd registry: PublishUnitStates: %w", err)
	}
	mkey := r.keys.machine(machineID)
	return r.call(ctx, "PublishUnitStates", func(ctx context.Context) error {
		lease, err := r.presenceLease(ctx, machineID, session)
		if err != nil {
			return err
		}
		for _, batch := range batches(ops(lease), r.cfg.maxTxnOps) {
			resp, err := r.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(mkey), "=", lease)}, batch, nil)
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				r.dropSession(sessionKey{machineID, session})
				return fmt.Errorf("machine %s session %s: %w", machineID, session, core.ErrNotPresent)
			}
		}
		return nil
	})
}

// stateOps validates a publication and returns a function that turns it into
// one op per unit, sorted by key, with puts attached to a lease.
func (r *Registry) stateOps(machineID string, states []core.UnitState, removed []string) (func(clientv3.LeaseID) []clientv3.Op, error) {
	if err := checkComponent("machine ID", machineID); err != nil {
		return nil, err
	}
	values := map[string]*string{} // key → value; nil deletes
	for _, s := range states {
		if err := checkComponent("unit name", s.Unit); err != nil {
			return nil, fmt.Errorf("machine %s: state: %w", machineID, err)
		}
		if s.Machine != "" && s.Machine != machineID {
			return nil, fmt.Errorf("machine %s: state of unit %s names machine %s", machineID, s.Unit, s.Machine)
		}
		v := encode(stateValue{Hash: s.Hash, Load: s.LoadState, Active: s.ActiveState, Sub: s.SubState, Launched: s.Launched})
		values[r.keys.state(machineID, s.Unit)] = &v
	}
	for _, name := range removed {
		if err := checkComponent("unit name", name); err != nil {
			return nil, fmt.Errorf("machine %s: removed state: %w", machineID, err)
		}
		values[r.keys.state(machineID, name)] = nil
	}
	keys := sortedKeys(values)
	return func(lease clientv3.LeaseID) []clientv3.Op {
		ops := make([]clientv3.Op, len(keys))
		for i, k := range keys {
			if v := values[k]; v != nil {
				ops[i] = clientv3.OpPut(k, *v, clientv3.WithLease(lease))
			} else {
				ops[i] = clientv3.OpDelete(k)
			}
		}
		return ops
	}, nil
}

// sortedKeys returns the keys of m in order, so that the same request produces
// the same transactions on every run.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// UnitStates lists every published state, sorted by unit then machine: one
// range read.
func (r *Registry) UnitStates(ctx context.Context) ([]core.UnitState, error) {
	out, err := listPairs(ctx, r, "UnitStates", r.keys.dir(dirState), dirState, func(machine, unit string, v stateValue, _ int64) core.UnitState {
		return core.UnitState{Unit: unit, Machine: machine, Hash: v.Hash, LoadState: v.Load, ActiveState: v.Active, SubState: v.Sub, Launched: v.Launched}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b core.UnitState) int {
		return cmp.Or(strings.Compare(a.Unit, b.Unit), strings.Compare(a.Machine, b.Machine))
	})
	return out, nil
}
