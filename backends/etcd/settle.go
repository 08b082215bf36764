package etcd

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// settlePoll is how often Settle asks etcd again for watch progress while some
// watch is behind.
const settlePoll = 10 * time.Millisecond

// watchTable tracks how far each live Notify watch of a Registry has delivered,
// so that Settle can wait for them.
type watchTable struct {
	mu      sync.Mutex
	live    map[*watchProgress]struct{}
	changed chan struct{} // closed and replaced when a watch advances
	restart chan struct{} // closed and replaced when the store's revision went back
}

// watchProgress is one watch's position: every change up to seen in its range
// has been signalled. It is guarded by the table's mutex.
type watchProgress struct {
	seen int64
}

func (t *watchTable) init() {
	t.live = map[*watchProgress]struct{}{}
	t.changed = make(chan struct{})
	t.restart = make(chan struct{})
}

// restarts returns a channel closed at the next reset.
func (t *watchTable) restarts() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.restart
}

// reset forgets how far each watch has delivered and tells the watches to
// start again: the store's revision went backwards.
func (t *watchTable) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.live {
		p.seen = 0
	}
	close(t.restart)
	t.restart = make(chan struct{})
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *watchTable) add() *watchProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &watchProgress{}
	t.live[p] = struct{}{}
	return p
}

func (t *watchTable) remove(p *watchProgress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.live, p)
}

// set records that p has delivered every change up to rev.
func (p *watchProgress) set(r *Registry, rev int64) {
	t := &r.watches
	t.mu.Lock()
	defer t.mu.Unlock()
	if rev > p.seen {
		p.seen = rev
		close(t.changed)
		t.changed = make(chan struct{})
	}
}

// behind reports whether some live watch has not reached rev, and returns a
// channel closed at the next advance of any watch.
func (t *watchTable) behind(rev int64) (bool, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.live {
		if p.seen < rev {
			return true, t.changed
		}
	}
	return false, nil
}

// Settle waits until every live Notify channel of this Registry has been
// signalled for every change up to the newest revision this Registry has seen
// in a reply (its own writes and expiries included), asking etcd for watch
// progress where a watch has nothing to deliver. A driver that serializes its
// calls, like the simulator, calls Settle before reading the channels, so that
// the wake-ups it sees do not depend on timing. It gives up after the request
// timeout with an error wrapping core.ErrUnavailable.
func (r *Registry) Settle(ctx context.Context) error {
	target := r.rev.Load()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	poll := time.NewTicker(settlePoll)
	defer poll.Stop()
	for {
		behind, changed := r.watches.behind(target)
		if !behind {
			return nil
		}
		// Watches are opened with WithRequireLeader, which selects their stream.
		if err := r.cli.RequestProgress(clientv3.WithRequireLeader(ctx)); err != nil && ctx.Err() == nil {
			return fmt.Errorf("etcd registry: Settle: %w", classify(ctx, err))
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			return fmt.Errorf("etcd registry: Settle: watches did not reach revision %d: %w: %w", target, core.ErrUnavailable, ctx.Err())
		}
	}
}
