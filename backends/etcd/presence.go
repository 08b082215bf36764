package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// Heartbeat creates or renews the presence of m for session. The machine record
// lives at machine/<id>, attached to one lease per session; its value names the
// session, so a second live session for the same ID is refused with
// core.ErrMachineConflict. A renewal that changes nothing is one keep-alive (no
// request at all with a virtual clock); the lease keeps the TTL it was granted
// with (see the package documentation).
func (r *Registry) Heartbeat(ctx context.Context, m core.MachineState, session string, ttl time.Duration) error {
	if err := checkComponent("machine ID", m.ID); err != nil {
		return fmt.Errorf("etcd registry: Heartbeat: %w", err)
	}
	if ttl <= 0 {
		return fmt.Errorf("etcd registry: Heartbeat: machine %s: presence TTL %v is not positive", m.ID, ttl)
	}
	value := encode(newMachineValue(m, session))
	return r.call(ctx, "Heartbeat", func(ctx context.Context) error {
		for range conflictRounds {
			done, err := r.heartbeatOnce(ctx, m.ID, session, value, ttl)
			if err != nil || done {
				return err
			}
		}
		return fmt.Errorf("machine %s: presence kept changing during the heartbeat: %w", m.ID, core.ErrUnavailable)
	})
}

// heartbeatOnce is one round of Heartbeat; done is false when the presence
// changed under it and the round must be repeated.
func (r *Registry) heartbeatOnce(ctx context.Context, id, session, value string, ttl time.Duration) (done bool, err error) {
	key := r.keys.machine(id)
	sk := sessionKey{id, session}
	if h := r.session(sk); h != nil {
		if err := r.renew(ctx, h.id, ttl, key); errors.Is(err, errLeaseGone) {
			r.forget(h.id)
			return false, nil
		} else if err != nil {
			return false, err
		}
		if h.value == value {
			return true, nil
		}
		resp, err := r.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(key), "=", h.id)},
			[]clientv3.Op{clientv3.OpPut(key, value, clientv3.WithLease(h.id))}, nil)
		if err != nil {
			return false, err
		}
		if !resp.Succeeded {
			r.dropSession(sk)
			return false, nil
		}
		r.setSession(sk, &heldLease{id: h.id, value: value})
		return true, nil
	}
	resp, err := r.get(ctx, key)
	if err != nil {
		return false, err
	}
	if len(resp.Kvs) == 1 {
		kv := resp.Kvs[0]
		var v machineValue
		if err := decode(key, kv.Value, &v); err != nil {
			return false, err
		}
		if v.Session != session {
			return false, fmt.Errorf("machine %s: held by session %s: %w", id, v.Session, core.ErrMachineConflict)
		}
		// Our own session, held through another Registry or before a restart of
		// this one: adopt its lease and take the renewal path.
		r.setSession(sk, &heldLease{id: clientv3.LeaseID(kv.Lease), value: string(kv.Value)})
		return false, nil
	}
	return r.createPresence(ctx, sk, key, value, ttl)
}

// createPresence writes a new machine record under a new lease, if the key is
// still free.
func (r *Registry) createPresence(ctx context.Context, sk sessionKey, key, value string, ttl time.Duration) (bool, error) {
	lease, err := r.grant(ctx, ttl, key)
	if err != nil {
		return false, err
	}
	resp, err := r.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		[]clientv3.Op{clientv3.OpPut(key, value, clientv3.WithLease(lease))}, nil)
	if err == nil && resp.Succeeded {
		r.setSession(sk, &heldLease{id: lease, value: value})
		return true, nil
	}
	if rerr := r.revoke(ctx, lease); rerr != nil && err == nil {
		err = rerr
	}
	return false, err
}

// Leave ends the presence of machineID held by session at once, with the unit
// states published under it: its lease is revoked. If session holds no presence
// for the machine there is nothing to end and Leave succeeds.
func (r *Registry) Leave(ctx context.Context, machineID, session string) error {
	if err := checkComponent("machine ID", machineID); err != nil {
		return fmt.Errorf("etcd registry: Leave: %w", err)
	}
	return r.call(ctx, "Leave", func(ctx context.Context) error {
		lease, err := r.presenceLease(ctx, machineID, session)
		if errors.Is(err, core.ErrNotPresent) {
			return nil
		}
		if err != nil {
			return err
		}
		return r.revoke(ctx, lease)
	})
}

// presenceLease returns the lease of the presence session holds for machine,
// or core.ErrNotPresent.
func (r *Registry) presenceLease(ctx context.Context, machine, session string) (clientv3.LeaseID, error) {
	if h := r.session(sessionKey{machine, session}); h != nil {
		return h.id, nil
	}
	key := r.keys.machine(machine)
	resp, err := r.get(ctx, key)
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, fmt.Errorf("machine %s: %w", machine, core.ErrNotPresent)
	}
	kv := resp.Kvs[0]
	var v machineValue
	if err := decode(key, kv.Value, &v); err != nil {
		return 0, err
	}
	if v.Session != session {
		return 0, fmt.Errorf("machine %s: held by session %s, not %s: %w", machine, v.Session, session, core.ErrNotPresent)
	}
	return clientv3.LeaseID(kv.Lease), nil
}

// Machines lists the live machines, sorted by ID, with their dynamic metadata
// merged: one request reading machine/ and meta/.
func (r *Registry) Machines(ctx context.Context) ([]core.MachineState, error) {
	var out []core.MachineState
	err := r.call(ctx, "Machines", func(ctx context.Context) error {
		ms, err := r.readMachines(ctx, r.keys.dir(dirMachine), r.keys.dir(dirMeta), true)
		out = ms
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (r *Registry) session(k sessionKey) *heldLease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[k]
}

func (r *Registry) setSession(k sessionKey, h *heldLease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions[k] = h
}

func (r *Registry) dropSession(k sessionKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sessions, k)
}
