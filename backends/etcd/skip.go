package etcd

import (
	"errors"
	"log/slog"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// skipLog remembers the values listings left out, so that each is logged and
// counted once (per key and mod revision) however often it is listed again.
type skipLog struct {
	mu   sync.Mutex
	seen map[string]int64 // key → mod revision of the unreadable value logged
	n    int64
}

// SkippedValues returns how many unreadable values (a key at one mod revision)
// listings have left out so far: written by a newer version, by something else,
// or corrupted. Each was logged once with its key.
func (r *Registry) SkippedValues() int64 {
	r.skips.mu.Lock()
	defer r.skips.mu.Unlock()
	return r.skips.n
}

// skip leaves kv out of a listing because err says it cannot be read: a
// *ValueError is logged (once) and counted, and skip returns nil; any other
// error is returned, failing the listing.
func (r *Registry) skip(kv *mvccpb.KeyValue, err error) error {
	var ve *ValueError
	if !errors.As(err, &ve) {
		return err
	}
	key := string(kv.Key)
	r.skips.mu.Lock()
	defer r.skips.mu.Unlock()
	if rev, ok := r.skips.seen[key]; ok && rev == kv.ModRevision {
		return nil
	}
	if r.skips.seen == nil {
		r.skips.seen = map[string]int64{}
	}
	r.skips.seen[key] = kv.ModRevision
	r.skips.n++
	r.cfg.logger.Warn("etcd registry: skipping a value this version cannot read",
		slog.String("key", key), slog.Int64("modRevision", kv.ModRevision), slog.String("reason", ve.Reason))
	return nil
}
