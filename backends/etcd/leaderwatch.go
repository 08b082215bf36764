package etcd

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaderWatch caches the leader key for standby engines: after a read of the
// key found it held, a watch from the read's revision keeps the cache current, so that a
// standby's AcquireLeadership answers "not leader" without a request while
// another session's leader key exists (it exists only while that session's
// lease lives). The cache serves only that answer; everything else (the key
// absent, held by this very engine and session) reads etcd as before. The
// watch ends, and the cache with it, when etcd ends it, when the store's
// revision goes backwards, or when the client is closed; the next read
// starts it again. With a virtual clock (WithClock) there is no cache, so that
// answers never depend on how fast a watch delivers.
type leaderWatch struct {
	mu       sync.Mutex
	watching bool
	held     *leaderValue // the key's value while watched; nil: absent
}

// cachedLeader returns the watched value of the leader key; ok is false when
// the key is not watched or absent.
func (r *Registry) cachedLeader() (v leaderValue, ok bool) {
	w := &r.leaderWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.watching || w.held == nil {
		return leaderValue{}, false
	}
	return *w.held, true
}

// followLeader starts watching the leader key after a read of it at revision
// rev found it held, unless it is watched already.
func (r *Registry) followLeader(held *leaderValue, rev int64) {
	if r.virtual != nil {
		return
	}
	w := &r.leaderWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watching {
		return
	}
	w.watching, w.held = true, held
	go r.serveLeaderWatch(rev+1, r.watches.restarts())
}

// serveLeaderWatch watches the leader key from revision from and applies its
// events to the cache until the watch ends or restart is closed, then drops
// the cache. (Opening a watch blocks while etcd is unreachable: not in the
// caller's request.)
func (r *Registry) serveLeaderWatch(from int64, restart <-chan struct{}) {
	w := &r.leaderWatch
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(r.cli.Ctx()))
	ch := r.cli.Watch(ctx, r.keys.leader(), clientv3.WithRev(from))
	defer func() {
		cancel()
		w.mu.Lock()
		w.watching, w.held = false, nil
		w.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-restart:
			return
		case resp, ok := <-ch:
			if !ok || resp.Canceled || resp.Err() != nil {
				return
			}
			for _, ev := range resp.Events {
				var held *leaderValue
				if ev.Type == clientv3.EventTypePut {
					var v leaderValue
					if err := decode(string(ev.Kv.Key), ev.Kv.Value, &v); err != nil {
						// Unreadable: let the next attempt read it and report it.
						return
					}
					held = &v
				}
				w.mu.Lock()
				w.held = held
				w.mu.Unlock()
			}
		}
	}
}
