package etcd

import (
	"log/slog"
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// clusterLog remembers the cluster ID of the replies, to notice a cluster
// replaced by a new one on the same endpoints.
type clusterLog struct {
	mu sync.Mutex
	id uint64 // 0 until the first reply
}

// changed records the cluster of h and reports whether it differs from the
// one recorded before.
func (l *clusterLog) changed(h *etcdserverpb.ResponseHeader) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.id
	l.id = h.ClusterId
	return was != 0 && was != h.ClusterId
}

// saw records the store revision of a response header.
func (r *Registry) saw(h *etcdserverpb.ResponseHeader) { r.sawAfter(h, 0) }

// sawAfter records the store revision of the reply to a linearizable request
// (a read or a transaction) sent when the highest revision seen was floor.
// Such a reply cannot show a lower revision unless the store went backwards:
// a restore from an older snapshot without --bump-revision, or a new cluster
// on the same endpoints. Then the revisions seen so far mean nothing any more:
// every live Notify channel wakes its caller, who relists, and its watches
// start again from the current revision.
func (r *Registry) sawAfter(h *etcdserverpb.ResponseHeader, floor int64) {
	if h == nil {
		return
	}
	if r.cluster.changed(h) || h.Revision < floor {
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
