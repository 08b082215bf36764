package memory

import (
	"fmt"

	"github.com/fleet-rebuild/fleet/core"
)

// Faults are hooks that inject failures into a Registry, for the simulator and
// for tests. A nil hook injects nothing. Hooks are called synchronously, in a
// deterministic order for serialized calls.
//
// op is the name of the core.Registry method called ("CreateUnit",
// "ApplySchedule", "Heartbeat", ...). machine is the machine the call concerns:
// the machine ID of Heartbeat, Leave, PublishUnitStates and MachinePlacements,
// the engine ID of AcquireLeadership, ResignLeadership and ApplySchedule, and ""
// for the calls that concern no machine. To model a machine cut off from the
// registry on every backend alike, wrap the core.Registry that its agent uses.
type Faults struct {
	// Fail is called before a call takes effect. If it returns an error the call
	// changes nothing and returns that error, wrapped; return core.ErrUnavailable
	// to model an unreachable backend. Fail is called without the registry's lock
	// held and may call the Registry.
	Fail func(op, machine string) error
	// LoseReply is called after a call succeeded. If it returns an error the
	// call's effect stays but the caller gets that error, wrapped, and no result:
	// a reply lost in transit. Return core.ErrUnavailable to model a timeout.
	// LoseReply is called without the registry's lock held and may call the
	// Registry.
	LoseReply func(op, machine string) error
	// DropNotify is called once per change and scope, when that scope has
	// subscribers; if it returns true they are not woken for that change (a lost
	// watch event). It is called with the registry's lock held and must not call
	// the Registry.
	DropNotify func(scope core.Scope) bool
}

// SetFaults replaces the fault hooks; the zero Faults removes them all. It is safe
// to call while other calls are in flight; they see the old or the new hooks.
func (r *Registry) SetFaults(f Faults) {
	r.faults.Store(&f)
}

// failBefore runs the Fail hook for op.
func (r *Registry) failBefore(op, machine string) error {
	if f := r.faults.Load(); f.Fail != nil {
		if err := f.Fail(op, machine); err != nil {
			return fmt.Errorf("memory registry: %s: injected failure: %w", op, err)
		}
	}
	return nil
}

// failAfter runs the LoseReply hook for op.
func (r *Registry) failAfter(op, machine string) error {
	if f := r.faults.Load(); f.LoseReply != nil {
		if err := f.LoseReply(op, machine); err != nil {
			return fmt.Errorf("memory registry: %s: injected lost reply: %w", op, err)
		}
	}
	return nil
}

// dropNotify reports whether the DropNotify hook drops this change for scope.
func (r *Registry) dropNotify(scope core.Scope) bool {
	f := r.faults.Load()
	return f.DropNotify != nil && f.DropNotify(scope)
}
