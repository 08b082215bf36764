package memory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/fleet-rebuild/fleet/core"
)

var _ core.Registry = (*Registry)(nil)

// Registry is a core.Registry in memory. The zero value is not usable; call New.
// It is safe for concurrent use: one mutex serializes every call.
type Registry struct {
	clock  core.Clock
	faults atomic.Pointer[Faults]

	mu  sync.Mutex
	rev int64

	units       map[string]core.Unit
	globalNames map[string]struct{}
	contents    map[core.Hash][]byte
	refs        map[core.Hash]int // units and placements that use each hash

	byMachine map[string]map[string]core.Placement // machine → unit → placement
	byUnit    map[string]map[string]struct{}       // unit → machines it is placed on

	machines map[string]*presence
	meta     map[string]map[string]string // machine → dynamic metadata ("" removes)
	expiries expiryHeap
	states   map[string]map[string]core.UnitState // machine → unit → state

	leader *lease

	subs   map[string][]*subscriber // scope.Machine → subscribers ("" = engine)
	scopes []string                 // machine scopes with subscribers, sorted

	lists lists
}

// Option configures a Registry made by New.
type Option func(*Registry)

// WithFaults installs fault hooks from the start; see SetFaults.
func WithFaults(f Faults) Option {
	return func(r *Registry) { r.SetFaults(f) }
}

// New returns an empty Registry whose leases expire by clock.
func New(clock core.Clock, opts ...Option) *Registry {
	r := &Registry{
		clock:       clock,
		units:       map[string]core.Unit{},
		globalNames: map[string]struct{}{},
		contents:    map[core.Hash][]byte{},
		refs:        map[core.Hash]int{},
		byMachine:   map[string]map[string]core.Placement{},
		byUnit:      map[string]map[string]struct{}{},
		machines:    map[string]*presence{},
		meta:        map[string]map[string]string{},
		states:      map[string]map[string]core.UnitState{},
		subs:        map[string][]*subscriber{},
	}
	r.faults.Store(&Faults{})
	r.initLists()
	for _, o := range opts {
		o(r)
	}
	return r
}

// Revision returns the number of writes so far (see the package doc for what
// counts as one), after expiring the leases that are due.
func (r *Registry) Revision() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
	return r.rev
}

// Expire removes every presence and the leadership lease whose TTL has run out by
// the clock, and wakes the subscribers of the changes. Every call does this first;
// a driver that advances a virtual clock calls Expire so that watchers learn of a
// vanished machine without waiting for the next call.
func (r *Registry) Expire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
}

// call runs f with the registry locked and due leases expired, between the Fail
// and LoseReply hooks, and adds op to its error.
func call[T any](ctx context.Context, r *Registry, op, machine string, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("memory registry: %s: %w", op, err)
	}
	if err := r.failBefore(op, machine); err != nil {
		return zero, err
	}
	v, err := func() (T, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.expireLocked()
		return f()
	}()
	if err != nil {
		return zero, fmt.Errorf("memory registry: %s: %w", op, err)
	}
	if err := r.failAfter(op, machine); err != nil {
		return zero, err
	}
	return v, nil
}

// write is call for methods that return only an error.
func write(ctx context.Context, r *Registry, op, machine string, f func() error) error {
	_, err := call(ctx, r, op, machine, func() (struct{}, error) { return struct{}{}, f() })
	return err
}
