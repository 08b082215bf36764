package etcd

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// watchRetry is the wait before a watch that etcd ended (no leader, server
// stopped) is opened again.
const watchRetry = 200 * time.Millisecond

// keyRange is one watched range [key, end).
type keyRange struct{ key, end string }

// scopeRanges are the key ranges whose changes wake scope: for the engine the
// units, the machines and every placement; for a machine its own placements
// and the global units.
func (r *Registry) scopeRanges(scope core.Scope) []keyRange {
	if scope.Machine == "" {
		// machine/ and meta/ are adjacent in the key order (nothing else
		// sorts between them): one watch covers both.
		return []keyRange{
			{r.keys.dir(dirMachine), prefixEnd(r.keys.dir(dirMeta))},
			r.prefixRange(r.keys.dir(dirSched)),
			r.prefixRange(r.keys.dir(dirUnit)),
		}
	}
	return []keyRange{
		r.prefixRange(r.keys.schedDir(scope.Machine)),
		r.prefixRange(r.keys.dir(dirGlobal)),
		r.prefixRange(r.keys.metaDir(scope.Machine)),
	}
}

func (r *Registry) prefixRange(p string) keyRange { return keyRange{p, prefixEnd(p)} }

// Notify returns a channel that receives a value (coalesced, capacity 1) after
// each change in scope, and is closed when ctx is done. It watches the scope's
// key ranges (see scopeRanges) and returns once etcd has confirmed every watch,
// so that a change made after Notify returns is never missed; if etcd does not
// confirm within the request timeout, the channel receives a value at once so
// that the caller reads (and learns that etcd is unavailable), and the watches
// keep trying. Renewals of presence and leadership are keep-alives, not
// writes, so they wake nobody; neither do published unit states.
//
// The watches resume from the last revision they delivered. When etcd has
// compacted that revision away the channel receives a value (the caller
// relists) and the watch continues from the compaction point. When the reply
// to a read or a transaction of this Registry shows the store's revision went
// backwards (see sawAfter), the channel receives a value and the watches
// start again from the current revision. One goroutine per call serves the
// watches and stops when ctx is done or the client is closed; either closes
// the channel.
func (r *Registry) Notify(ctx context.Context, scope core.Scope) <-chan struct{} {
	n := &notifier{r: r, out: make(chan struct{}, 1), ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(r.cli.Ctx(), cancel)
	if ctx.Err() != nil {
		stopAfter()
		cancel()
		close(n.out)
		return n.out
	}
	for _, kr := range r.scopeRanges(scope) {
		n.watches = append(n.watches, &scopeWatch{keyRange: kr, progress: r.watches.add()})
	}
	go func() {
		defer cancel()
		defer stopAfter()
		n.run(ctx)
	}()
	timer := time.NewTimer(r.cfg.requestTimeout)
	defer timer.Stop()
	select {
	case <-n.ready:
	case <-timer.C:
		n.gaveUp.Store(true)
		n.signal()
	case <-ctx.Done():
	}
	return n.out
}

// notifier serves the watches of one Notify call.
type notifier struct {
	r       *Registry
	out     chan struct{}
	ready   chan struct{} // closed once etcd has created every watch
	watches []*scopeWatch
	// gaveUp: Notify returned before every watch was created; the caller may
	// have read before the watches start, so their creation signals again.
	gaveUp atomic.Bool

	mu     sync.Mutex // orders signal after stop
	closed bool
}

// scopeWatch is one watched range and where it stands.
type scopeWatch struct {
	keyRange
	next     int64 // revision to resume from; 0 until the first watch is created
	ch       clientv3.WatchChan
	cancel   context.CancelFunc
	created  bool
	progress *watchProgress
}

// open starts (or restarts) the watch of w from w.next. The client blocks here
// while etcd is unreachable, until ctx is done.
func (n *notifier) open(ctx context.Context, w *scopeWatch) {
	if w.cancel != nil {
		w.cancel()
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	opts := []clientv3.OpOption{clientv3.WithRange(w.end), clientv3.WithCreatedNotify(), clientv3.WithProgressNotify()}
	if w.next > 0 {
		opts = append(opts, clientv3.WithRev(w.next))
	}
	w.ch, w.cancel = n.r.cli.Watch(wctx, w.key, opts...), cancel
}

// run opens and serves the watches (at most three) until ctx is done, then
// closes the channel.
func (n *notifier) run(ctx context.Context) {
	defer n.stop()
	restart := n.r.watches.restarts()
	for _, w := range n.watches {
		n.open(ctx, w)
	}
	var ws [3]*scopeWatch
	copy(ws[:], n.watches)
	ch := func(i int) clientv3.WatchChan {
		if ws[i] == nil {
			return nil
		}
		return ws[i].ch
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-restart:
			restart = n.r.watches.restarts()
			n.restart(ctx)
		case resp, ok := <-ch(0):
			n.handle(ctx, ws[0], resp, ok)
		case resp, ok := <-ch(1):
			n.handle(ctx, ws[1], resp, ok)
		case resp, ok := <-ch(2):
			n.handle(ctx, ws[2], resp, ok)
		}
	}
}

// restart wakes the caller, who relists, and opens every watch again from the
// current revision: the store's revision went backwards, so the revisions the
// watches would resume from may never come.
func (n *notifier) restart(ctx context.Context) {
	n.signal()
	for _, w := range n.watches {
		w.next = 0
		n.open(ctx, w)
	}
}

// created marks w created and closes ready when every watch is.
func (n *notifier) created(w *scopeWatch) {
	if w.created {
		return
	}
	w.created = true
	for _, o := range n.watches {
		if !o.created {
			return
		}
	}
	close(n.ready)
	if n.gaveUp.Load() {
		n.signal()
	}
}

// handle processes one watch response, or the end of a watch (ok false).
func (n *notifier) handle(ctx context.Context, w *scopeWatch, resp clientv3.WatchResponse, ok bool) {
	if ok {
		n.r.saw(resp.Header)
	}
	switch {
	case ctx.Err() != nil:
	case !ok || resp.Canceled:
		if resp.CompactRevision > 0 {
			// The revisions after w.next-1 are gone: the caller must relist.
			n.signal()
			w.next = resp.CompactRevision
		} else if sleep(ctx, watchRetry) != nil {
			return
		}
		n.open(ctx, w)
	case resp.Created:
		n.created(w)
		if w.next == 0 {
			w.next = resp.Header.Revision + 1
		}
		w.progress.set(n.r, w.next-1)
	case len(resp.Events) > 0:
		n.signal()
		last := resp.Events[len(resp.Events)-1].Kv.ModRevision
		w.next = last + 1
		w.progress.set(n.r, last)
	case resp.IsProgressNotify():
		w.next = max(w.next, resp.Header.Revision+1)
		w.progress.set(n.r, w.next-1)
	}
}

// signal wakes the caller, coalescing with a wake-up it has not read yet.
func (n *notifier) signal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	select {
	case n.out <- struct{}{}:
	default:
	}
}

// stop ends every watch, forgets them and closes the channel.
func (n *notifier) stop() {
	for _, w := range n.watches {
		if w.cancel != nil {
			w.cancel()
		}
		n.r.watches.remove(w.progress)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	close(n.out)
}
