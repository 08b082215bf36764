package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// AcquireLeadership acquires or renews the leadership lease for engine in
// session. The leader key holds the engine's ID and session under a lease of
// ttl; a lease held for the same engine by another session is another
// process's (ErrNotLeader), one held by the same session is adopted (a
// restarted process that kept its session). The fence's epoch is
// the key's create revision, which only a new acquisition changes, so epochs
// strictly increase. A renewal by the Registry that acquired is one keep-alive
// (no request with a virtual clock); otherwise one read, plus a grant and a
// transaction when the key is free. After that read a standby engine watches
// the leader key (see leaderWatch): while another session holds it, later
// attempts answer ErrNotLeader without a request.
func (r *Registry) AcquireLeadership(ctx context.Context, engine, session string, ttl time.Duration) (core.Fence, error) {
	if engine == "" {
		return core.Fence{}, errors.New("etcd registry: AcquireLeadership: engine has no ID")
	}
	if session == "" {
		return core.Fence{}, fmt.Errorf("etcd registry: AcquireLeadership: engine %s has no session", engine)
	}
	if ttl <= 0 {
		return core.Fence{}, fmt.Errorf("etcd registry: AcquireLeadership: lease TTL %v is not positive", ttl)
	}
	var fence core.Fence
	err := r.call(ctx, "AcquireLeadership", func(ctx context.Context) error {
		for range conflictRounds {
			f, done, err := r.acquireOnce(ctx, engine, session, ttl)
			if err != nil || done {
				fence = f
				return err
			}
		}
		return fmt.Errorf("engine %s: leadership kept changing: %w", engine, core.ErrUnavailable)
	})
	return fence, err
}

// acquireOnce is one round of AcquireLeadership; done is false when the lease
// changed under it and the round must be repeated.
func (r *Registry) acquireOnce(ctx context.Context, engine, session string, ttl time.Duration) (core.Fence, bool, error) {
	key := r.keys.leader()
	if h := r.heldLeader(); h != nil && h.engine == engine && h.session == session {
		if err := r.renew(ctx, h.id, ttl, key); errors.Is(err, errLeaseGone) {
			r.forget(h.id)
			return core.Fence{}, false, nil
		} else if err != nil {
			return core.Fence{}, false, err
		}
		return core.Fence{Engine: engine, Session: session, Epoch: h.epoch}, true, nil
	}
	if v, ok := r.cachedLeader(); ok && (v.Engine != engine || v.Session != session) {
		return core.Fence{}, false, heldByOther(engine, v)
	}
	resp, err := r.get(ctx, key)
	if err != nil {
		return core.Fence{}, false, err
	}
	if len(resp.Kvs) == 1 {
		kv := resp.Kvs[0]
		var v leaderValue
		if err := decode(key, kv.Value, &v); err != nil {
			return core.Fence{}, false, err
		}
		r.followLeader(&v, resp.Header.Revision)
		if v.Engine != engine || v.Session != session {
			return core.Fence{}, false, heldByOther(engine, v)
		}
		// Held for this engine and session through another Registry: adopt it.
		r.setLeader(&heldLease{id: clientv3.LeaseID(kv.Lease), engine: engine, session: session, epoch: kv.CreateRevision})
		return core.Fence{}, false, nil
	}
	lease, err := r.grant(ctx, ttl, key)
	if err != nil {
		return core.Fence{}, false, err
	}
	value := encode(leaderValue{Engine: engine, Session: session})
	tresp, err := r.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		[]clientv3.Op{clientv3.OpPut(key, value, clientv3.WithLease(lease))}, nil)
	if err == nil && tresp.Succeeded {
		epoch := tresp.Header.Revision
		r.setLeader(&heldLease{id: lease, engine: engine, session: session, epoch: epoch})
		return core.Fence{Engine: engine, Session: session, Epoch: epoch}, true, nil
	}
	if rerr := r.revoke(ctx, lease); rerr != nil && err == nil {
		err = rerr
	}
	return core.Fence{}, false, err
}

// heldByOther is the ErrNotLeader of engine when the leader key names v.
func heldByOther(engine string, v leaderValue) error {
	if v.Engine != engine {
		return fmt.Errorf("engine %s: lease held by %s: %w", engine, v.Engine, core.ErrNotLeader)
	}
	return fmt.Errorf("engine %s: lease held by another session of the same machine ID: %w", engine, core.ErrNotLeader)
}

// ResignLeadership deletes the leader key if fence is current, in a transaction
// that compares it as ApplySchedule does, then revokes its lease. A stale fence
// names a lease that is already gone: nothing to do.
func (r *Registry) ResignLeadership(ctx context.Context, fence core.Fence) error {
	key := r.keys.leader()
	return r.call(ctx, "ResignLeadership", func(ctx context.Context) error {
		if fence.Epoch <= 0 {
			return nil
		}
		resp, err := r.txn(ctx, r.fenceCmps(fence), []clientv3.Op{clientv3.OpGet(key), clientv3.OpDelete(key)}, nil)
		if err != nil || !resp.Succeeded {
			return err
		}
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) != 1 {
			return nil
		}
		return r.revoke(ctx, clientv3.LeaseID(kvs[0].Lease))
	})
}

// dropStaleLeadership forgets (and revokes) the lease this Registry holds for
// fence after a fenced write found the fence stale: the leader key was deleted
// or replaced under a lease that is still alive (an operator forcing a
// failover, a resign whose revoke failed). Without this, renewals would keep
// the dead fence alive forever; with it, the next AcquireLeadership reads the
// key again.
func (r *Registry) dropStaleLeadership(ctx context.Context, fence core.Fence) {
	h := r.heldLeader()
	if h == nil || h.engine != fence.Engine || h.session != fence.Session || h.epoch != fence.Epoch {
		return
	}
	r.forget(h.id)
	// Best effort: an unrevoked lease only lingers until its TTL.
	_ = r.revoke(ctx, h.id)
}

// fenceCmps holds iff fence is the current leadership: the leader key was
// created at fence.Epoch and names fence.Engine and fence.Session.
func (r *Registry) fenceCmps(fence core.Fence) []clientv3.Cmp {
	key := r.keys.leader()
	return []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(key), "=", fence.Epoch),
		clientv3.Compare(clientv3.Value(key), "=", encode(leaderValue{Engine: fence.Engine, Session: fence.Session})),
	}
}

func (r *Registry) heldLeader() *heldLease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leader
}

func (r *Registry) setLeader(h *heldLease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leader = h
}
