package etcd

import (
	"log/slog"
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// revisionLog notices the store's revision going backwards: a restore from an
// older snapshot without --bump-revision, or a cluster replaced by a new one
// on the same endpoints. A member's revision never decreases otherwise, while
// members may lag each other, so the highest revision is kept per member.
type revisionLog struct {
	mu      sync.Mutex
	cluster uint64
	members map[uint64]int64 // member ID → highest revision in its replies
}

// backwards records h and reports whether it shows the store went back: a
// revision below one the same member reported before, or another cluster.
// After that the history is forgotten and h is the new start.
func (l *revisionLog) backwards(h *etcdserverpb.ResponseHeader) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.members == nil || l.cluster != h.ClusterId {
		changed := l.members != nil
		l.cluster, l.members = h.ClusterId, map[uint64]int64{h.MemberId: h.Revision}
		return changed
	}
	prev, ok := l.members[h.MemberId]
	if ok && h.Revision < prev {
		l.members = map[uint64]int64{h.MemberId: h.Revision}
		return true
	}
	l.members[h.MemberId] = max(prev, h.Revision)
	return false
}

// saw records the store revision of a response header. When the revision went
// backwards, the revisions seen so far mean nothing any more: every live
// Notify channel wakes its caller, who relists, and its watches start again
// from the current revision.
func (r *Registry) saw(h *etcdserverpb.ResponseHeader) {
	if h == nil {
		return
	}
	if r.revs.backwards(h) {
		r.cfg.logger.Warn("etcd registry: the store's revision went backwards (restored?); relisting",
			slog.Int64("revision", h.Revision), slog.Int64("seen", r.rev.Load()))
		r.rev.Store(h.Revision)
		r.watches.reset()
		return
	}
	for {
		cur := r.rev.Load()
		if h.Revision <= cur || r.rev.CompareAndSwap(cur, h.Revision) {
			return
		}
	}
}
