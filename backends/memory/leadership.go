package memory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// lease is the engine leadership lease.
type lease struct {
	engine  string
	session string
	epoch   int64
	expires time.Time
}

// AcquireLeadership acquires or renews the lease for engine and session, until
// ttl from now. A new acquisition's epoch is the revision it creates, so epochs
// strictly increase; a renewal keeps the epoch and is not a write.
func (r *Registry) AcquireLeadership(ctx context.Context, engine, session string, ttl time.Duration) (core.Fence, error) {
	return call(ctx, r, "AcquireLeadership", engine, func() (core.Fence, error) {
		switch {
		case engine == "":
			return core.Fence{}, errors.New("engine has no ID")
		case session == "":
			return core.Fence{}, fmt.Errorf("engine %s has no session", engine)
		case ttl <= 0:
			return core.Fence{}, fmt.Errorf("lease TTL %v is not positive", ttl)
		case r.leader != nil && r.leader.engine != engine:
			return core.Fence{}, fmt.Errorf("engine %s: lease held by %s: %w", engine, r.leader.engine, core.ErrNotLeader)
		case r.leader != nil && r.leader.session != session:
			return core.Fence{}, fmt.Errorf("engine %s: lease held by another session of the same machine ID: %w", engine, core.ErrNotLeader)
		}
		expires := r.clock.Now().Add(ttl)
		if r.leader != nil {
			r.leader.expires = expires
		} else {
			r.rev++
			r.leader = &lease{engine: engine, session: session, epoch: r.rev, expires: expires}
		}
		return core.Fence{Engine: engine, Session: session, Epoch: r.leader.epoch}, nil
	})
}

// ResignLeadership ends the lease at once if fence is current, and does nothing
// otherwise (the lease it names is already gone).
func (r *Registry) ResignLeadership(ctx context.Context, fence core.Fence) error {
	return write(ctx, r, "ResignLeadership", fence.Engine, func() error {
		if r.currentLocked(fence) {
			r.rev++
			r.leader = nil
		}
		return nil
	})
}

// currentLocked reports whether fence names the live leadership lease.
func (r *Registry) currentLocked(fence core.Fence) bool {
	return r.leader != nil && r.leader.engine == fence.Engine && r.leader.session == fence.Session && r.leader.epoch == fence.Epoch
}
