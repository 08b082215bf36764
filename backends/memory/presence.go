package memory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// presence is one live machine: its record, the session holding it and the
// expiry of its lease. index is its position in the expiry heap.
type presence struct {
	state   core.MachineState
	session string
	expires time.Time
	index   int
}

// Heartbeat creates or renews the presence of m for session, until ttl from now.
// Creating a presence or changing its record is a write that wakes the engine;
// a plain renewal is neither.
func (r *Registry) Heartbeat(ctx context.Context, m core.MachineState, session string, ttl time.Duration) error {
	return write(ctx, r, "Heartbeat", m.ID, func() error {
		switch {
		case m.ID == "":
			return errors.New("machine has no ID")
		case ttl <= 0:
			return fmt.Errorf("machine %s: presence TTL %v is not positive", m.ID, ttl)
		}
		expires := r.clock.Now().Add(ttl)
		p, ok := r.machines[m.ID]
		switch {
		case ok && p.session != session:
			return fmt.Errorf("machine %s: %w", m.ID, core.ErrMachineConflict)
		case ok:
			p.expires = expires
			heap.Fix(&r.expiries, p.index)
			if sameMachine(p.state, m) {
				return nil
			}
			p.state = cloneMachine(m)
		default:
			p = &presence{state: cloneMachine(m), session: session, expires: expires}
			r.machines[m.ID] = p
			heap.Push(&r.expiries, p)
		}
		r.machinesChangedLocked(m.ID)
		return nil
	})
}

// Leave ends the presence of machineID held by session at once, with the unit
// states it published. If session holds no presence for the machine (it expired,
// or another session holds it) there is nothing to end and Leave succeeds.
func (r *Registry) Leave(ctx context.Context, machineID, session string) error {
	return write(ctx, r, "Leave", machineID, func() error {
		if p, ok := r.machines[machineID]; ok && p.session == session {
			r.dropMachineLocked(p)
		}
		return nil
	})
}

// Machines lists the live machines, sorted by ID.
func (r *Registry) Machines(ctx context.Context) ([]core.MachineState, error) {
	return call(ctx, r, "Machines", "", func() ([]core.MachineState, error) {
		list := r.lists.machines.get()
		out := make([]core.MachineState, len(list))
		for i, m := range list {
			out[i] = r.mergedLocked(m)
		}
		return out, nil
	})
}

// expireLocked drops every presence and the leadership lease whose expiry is not
// after the clock's now, machines in order of expiry then ID.
func (r *Registry) expireLocked() {
	now := r.clock.Now()
	for len(r.expiries) > 0 && !now.Before(r.expiries[0].expires) {
		r.dropMachineLocked(r.expiries[0])
	}
	if r.leader != nil && !now.Before(r.leader.expires) {
		r.rev++
		r.leader = nil
	}
}

// dropMachineLocked removes a presence and the states published under it.
func (r *Registry) dropMachineLocked(p *presence) {
	id := p.state.ID
	heap.Remove(&r.expiries, p.index)
	delete(r.machines, id)
	for unit := range r.states[id] {
		r.lists.states.changed(pairKey{unit, id})
	}
	delete(r.states, id)
	r.machinesChangedLocked(id)
}

// machinesChangedLocked records a write to the record of machine id and wakes
// the engine.
func (r *Registry) machinesChangedLocked(id string) {
	r.rev++
	r.lists.machines.changed(id)
	r.wakeLocked("")
}

func sameMachine(a, b core.MachineState) bool {
	return a.ID == b.ID && a.PublicIP == b.PublicIP && a.Version == b.Version &&
		a.Capabilities == b.Capabilities && maps.Equal(a.Metadata, b.Metadata)
}

// cloneMachine copies m so that neither the caller nor the registry shares its
// metadata map.
func cloneMachine(m core.MachineState) core.MachineState {
	m.Metadata = maps.Clone(m.Metadata)
	return m
}

// expiryHeap orders presences by expiry, then machine ID; it implements
// heap.Interface.
type expiryHeap []*presence

func (h expiryHeap) Len() int { return len(h) }

func (h expiryHeap) Less(i, j int) bool {
	if c := h[i].expires.Compare(h[j].expires); c != 0 {
		return c < 0
	}
	return h[i].state.ID < h[j].state.ID
}

func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) Push(x any) {
	p := x.(*presence)
	p.index = len(*h)
	*h = append(*h, p)
}

func (h *expiryHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.index = -1
	return p
}
