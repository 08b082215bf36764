package etcd

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// virtualTTL is the etcd TTL of a lease whose expiry a virtual clock drives
// (WithClock): long enough that etcd never expires it during a test or a
// simulation, so that only the clock does.
const virtualTTL = 7 * 24 * time.Hour

// errLeaseGone: a lease this Registry held has expired or was revoked.
var errLeaseGone = errors.New("lease expired")

// sessionKey names the presence of one machine held by one fleetd session.
type sessionKey struct{ machine, session string }

// heldLease is a lease this Registry granted or adopted, so that a renewal that
// changes nothing costs one keep-alive.
type heldLease struct {
	id      clientv3.LeaseID
	value   string // presence only: the machine record last written under it
	engine  string // leadership only: the engine that holds it
	session string // leadership only: the fleetd session of that engine
	epoch   int64  // leadership only: the leader key's create revision
}

// virtualLease is the virtual deadline of one lease, with a label (the key it
// carries) that orders simultaneous expiries the same way on every run.
type virtualLease struct {
	id       clientv3.LeaseID
	deadline time.Time
	label    string
}

// virtualLeases tracks the leases whose expiry the clock drives. It is guarded
// by Registry.mu.
type virtualLeases struct {
	byID map[clientv3.LeaseID]*virtualLease
}

func newVirtualLeases() *virtualLeases {
	return &virtualLeases{byID: map[clientv3.LeaseID]*virtualLease{}}
}

// etcdTTL converts ttl to etcd's whole seconds, rounding up, at least 1. etcd
// itself raises a TTL below its minimum (1.5 election timeouts) to that minimum.
func etcdTTL(ttl time.Duration) int64 {
	return max(1, int64((ttl+time.Second-1)/time.Second))
}

// grant creates a lease of ttl; with a virtual clock its etcd TTL is virtualTTL
// and its deadline is tracked here. label names what it will carry.
func (r *Registry) grant(ctx context.Context, ttl time.Duration, label string) (clientv3.LeaseID, error) {
	secs := etcdTTL(ttl)
	if r.virtual != nil {
		secs = etcdTTL(virtualTTL)
	}
	resp, err := r.cli.Grant(ctx, secs)
	if err != nil {
		return 0, err
	}
	r.saw(resp.ResponseHeader)
	if r.virtual != nil {
		r.mu.Lock()
		r.virtual.byID[resp.ID] = &virtualLease{id: resp.ID, deadline: r.cfg.clock.Now().Add(ttl), label: label}
		r.mu.Unlock()
	}
	return resp.ID, nil
}

// renew extends a live lease, or fails with errLeaseGone. With etcd's TTLs it is
// one keep-alive, which restores the TTL the lease was granted with. With a
// virtual clock it moves the deadline to now + ttl and costs no request, unless
// the lease was granted by another Registry: then it is adopted if etcd still
// has it.
func (r *Registry) renew(ctx context.Context, id clientv3.LeaseID, ttl time.Duration, label string) error {
	if r.virtual == nil {
		resp, err := r.cli.KeepAliveOnce(ctx, id)
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return errLeaseGone
		}
		if err != nil {
			return err
		}
		r.saw(resp.ResponseHeader)
		return nil
	}
	deadline := r.cfg.clock.Now().Add(ttl)
	r.mu.Lock()
	v, ok := r.virtual.byID[id]
	if ok {
		v.deadline = deadline
	}
	r.mu.Unlock()
	if ok {
		return nil
	}
	resp, err := r.cli.TimeToLive(ctx, id)
	if err != nil {
		return err
	}
	if resp.TTL <= 0 {
		return errLeaseGone
	}
	r.mu.Lock()
	r.virtual.byID[id] = &virtualLease{id: id, deadline: deadline, label: label}
	r.mu.Unlock()
	return nil
}

// revoke ends a lease at once, deleting every key attached to it. A lease that is
// already gone is not an error.
func (r *Registry) revoke(ctx context.Context, id clientv3.LeaseID) error {
	resp, err := r.cli.Revoke(ctx, id)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return err
	}
	if resp != nil {
		r.saw(resp.Header)
	}
	r.forget(id)
	return nil
}

// forget drops every record of lease id.
func (r *Registry) forget(id clientv3.LeaseID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.virtual != nil {
		delete(r.virtual.byID, id)
	}
	for k, h := range r.sessions {
		if h.id == id {
			delete(r.sessions, k)
		}
	}
	if r.leader != nil && r.leader.id == id {
		r.leader = nil
	}
}

// expireDue revokes the virtual leases whose deadline is not after the clock's
// now, in order of deadline, then label. Without a virtual clock it does nothing:
// etcd expires leases itself.
func (r *Registry) expireDue(ctx context.Context) error {
	if r.virtual == nil {
		return nil
	}
	now := r.cfg.clock.Now()
	r.mu.Lock()
	var due []virtualLease
	for _, v := range r.virtual.byID {
		if !now.Before(v.deadline) {
			due = append(due, *v)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(due, func(a, b virtualLease) int {
		return cmp.Or(a.deadline.Compare(b.deadline), strings.Compare(a.label, b.label), cmp.Compare(a.id, b.id))
	})
	for _, v := range due {
		if err := r.revoke(ctx, v.id); err != nil {
			return err
		}
	}
	return nil
}

// Expire revokes every lease whose virtual deadline has passed, deleting the
// machine records, unit states and leadership they carry, so that Notify
// subscribers learn of them at once. Every call does this first; a driver that
// advances the virtual clock calls Expire so that watchers need not wait for
// the next call. Without WithClock it does nothing.
func (r *Registry) Expire(ctx context.Context) error {
	return r.call(ctx, "Expire", func(context.Context) error { return nil })
}
