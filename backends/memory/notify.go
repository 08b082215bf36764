package memory

import (
	"context"
	"slices"

	"github.com/fleet-rebuild/fleet/core"
)

// subscriber is one Notify channel.
type subscriber struct {
	ch chan struct{}
}

// Notify returns a channel that receives a value (coalesced, capacity 1) after
// each change in scope, and is closed when ctx is done.
//
// The engine scope (empty Machine) is woken by unit creation and destruction,
// target-state changes, schedule changes and machines joining, changing, leaving
// or expiring. A machine's scope is woken by schedule changes on that machine and
// by any change to a global unit. Published unit states and leadership wake
// nobody.
func (r *Registry) Notify(ctx context.Context, scope core.Scope) <-chan struct{} {
	s := &subscriber{ch: make(chan struct{}, 1)}
	r.mu.Lock()
	r.expireLocked()
	if ctx.Err() != nil {
		r.mu.Unlock()
		close(s.ch)
		return s.ch
	}
	r.subscribeLocked(scope.Machine, s)
	r.mu.Unlock()
	context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.unsubscribeLocked(scope.Machine, s)
		close(s.ch)
	})
	return s.ch
}

func (r *Registry) subscribeLocked(machine string, s *subscriber) {
	if len(r.subs[machine]) == 0 && machine != "" {
		i, _ := slices.BinarySearch(r.scopes, machine)
		r.scopes = slices.Insert(r.scopes, i, machine)
	}
	r.subs[machine] = append(r.subs[machine], s)
}

func (r *Registry) unsubscribeLocked(machine string, s *subscriber) {
	subs := slices.DeleteFunc(r.subs[machine], func(x *subscriber) bool { return x == s })
	if len(subs) > 0 {
		r.subs[machine] = subs
		return
	}
	delete(r.subs, machine)
	if i, ok := slices.BinarySearch(r.scopes, machine); ok {
		r.scopes = slices.Delete(r.scopes, i, i+1)
	}
}

// wakeLocked wakes the subscribers of one scope ("" = the engine's), unless the
// DropNotify hook drops the wake-up.
func (r *Registry) wakeLocked(machine string) {
	subs := r.subs[machine]
	if len(subs) == 0 || r.dropNotify(core.Scope{Machine: machine}) {
		return
	}
	for _, s := range subs {
		select {
		case s.ch <- struct{}{}:
		default:
		}
	}
}

// wakeMachinesLocked wakes every machine scope, in order of machine ID.
func (r *Registry) wakeMachinesLocked() {
	for _, m := range r.scopes {
		r.wakeLocked(m)
	}
}
