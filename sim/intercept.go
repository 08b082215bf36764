package sim

import (
	"context"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// RegistryFuncs are the optional replacements of a core.Registry's methods
// that Intercept installs, one per method, as controller-runtime's
// interceptor.Funcs are for its client. Each receives the wrapped registry,
// to call through to it or not: a fault can fail a call before it reaches
// the registry, or lose its reply after. A nil function calls through.
type RegistryFuncs struct {
	CreateUnit        func(ctx context.Context, reg core.Registry, u core.Unit, contents []byte) error
	DestroyUnit       func(ctx context.Context, reg core.Registry, name string) error
	ReplaceUnit       func(ctx context.Context, reg core.Registry, u core.Unit, contents []byte) error
	SetTargetState    func(ctx context.Context, reg core.Registry, name string, state core.JobState) error
	Unit              func(ctx context.Context, reg core.Registry, name string) (core.Unit, error)
	Units             func(ctx context.Context, reg core.Registry) ([]core.Unit, error)
	GlobalUnits       func(ctx context.Context, reg core.Registry) ([]core.Unit, error)
	UnitContents      func(ctx context.Context, reg core.Registry, hash core.Hash) ([]byte, error)
	Placements        func(ctx context.Context, reg core.Registry) ([]core.Placement, error)
	MachinePlacements func(ctx context.Context, reg core.Registry, machine string) ([]core.Placement, error)
	ApplySchedule     func(ctx context.Context, reg core.Registry, fence core.Fence, ops []core.ScheduleOp) ([]string, error)
	Heartbeat         func(ctx context.Context, reg core.Registry, m core.MachineState, session string, ttl time.Duration) error
	Leave             func(ctx context.Context, reg core.Registry, machineID, session string) error
	Machines          func(ctx context.Context, reg core.Registry) ([]core.MachineState, error)
	Machine           func(ctx context.Context, reg core.Registry, id string) (core.MachineState, error)
	PatchMetadata     func(ctx context.Context, reg core.Registry, ops []core.MetadataOp) error
	PublishUnitStates func(ctx context.Context, reg core.Registry, machineID, session string, states []core.UnitState, removed []string) error
	UnitStates        func(ctx context.Context, reg core.Registry) ([]core.UnitState, error)
	AcquireLeadership func(ctx context.Context, reg core.Registry, engine, session string, ttl time.Duration) (core.Fence, error)
	ResignLeadership  func(ctx context.Context, reg core.Registry, fence core.Fence) error
	Notify            func(ctx context.Context, reg core.Registry, scope core.Scope) <-chan struct{}
}

// Intercept returns a core.Registry that calls funcs where they are set and
// reg otherwise. It works on any backend.
func Intercept(reg core.Registry, funcs RegistryFuncs) core.Registry {
	return &intercepted{reg: reg, funcs: funcs}
}

type intercepted struct {
	reg   core.Registry
	funcs RegistryFuncs
}

var _ core.Registry = (*intercepted)(nil)

func (r *intercepted) CreateUnit(ctx context.Context, u core.Unit, contents []byte) error {
	if f := r.funcs.CreateUnit; f != nil {
		return f(ctx, r.reg, u, contents)
	}
	return r.reg.CreateUnit(ctx, u, contents)
}

func (r *intercepted) DestroyUnit(ctx context.Context, name string) error {
	if f := r.funcs.DestroyUnit; f != nil {
		return f(ctx, r.reg, name)
	}
	return r.reg.DestroyUnit(ctx, name)
}

func (r *intercepted) ReplaceUnit(ctx context.Context, u core.Unit, contents []byte) error {
	if f := r.funcs.ReplaceUnit; f != nil {
		return f(ctx, r.reg, u, contents)
	}
	return r.reg.ReplaceUnit(ctx, u, contents)
}

func (r *intercepted) SetTargetState(ctx context.Context, name string, state core.JobState) error {
	if f := r.funcs.SetTargetState; f != nil {
		return f(ctx, r.reg, name, state)
	}
	return r.reg.SetTargetState(ctx, name, state)
}

func (r *intercepted) Unit(ctx context.Context, name string) (core.Unit, error) {
	if f := r.funcs.Unit; f != nil {
		return f(ctx, r.reg, name)
	}
	return r.reg.Unit(ctx, name)
}

func (r *intercepted) Units(ctx context.Context) ([]core.Unit, error) {
	if f := r.funcs.Units; f != nil {
		return f(ctx, r.reg)
	}
	return r.reg.Units(ctx)
}

func (r *intercepted) GlobalUnits(ctx context.Context) ([]core.Unit, error) {
	if f := r.funcs.GlobalUnits; f != nil {
		return f(ctx, r.reg)
	}
	return r.reg.GlobalUnits(ctx)
}

func (r *intercepted) UnitContents(ctx context.Context, hash core.Hash) ([]byte, error) {
	if f := r.funcs.UnitContents; f != nil {
		return f(ctx, r.reg, hash)
	}
	return r.reg.UnitContents(ctx, hash)
}

func (r *intercepted) Placements(ctx context.Context) ([]core.Placement, error) {
	if f := r.funcs.Placements; f != nil {
		return f(ctx, r.reg)
	}
	return r.reg.Placements(ctx)
}

func (r *intercepted) MachinePlacements(ctx context.Context, machine string) ([]core.Placement, error) {
	if f := r.funcs.MachinePlacements; f != nil {
		return f(ctx, r.reg, machine)
	}
	return r.reg.MachinePlacements(ctx, machine)
}

func (r *intercepted) ApplySchedule(ctx context.Context, fence core.Fence, ops []core.ScheduleOp) ([]string, error) {
	if f := r.funcs.ApplySchedule; f != nil {
		return f(ctx, r.reg, fence, ops)
	}
	return r.reg.ApplySchedule(ctx, fence, ops)
}

func (r *intercepted) Heartbeat(ctx context.Context, m core.MachineState, session string, ttl time.Duration) error {
	if f := r.funcs.Heartbeat; f != nil {
		return f(ctx, r.reg, m, session, ttl)
	}
	return r.reg.Heartbeat(ctx, m, session, ttl)
}

func (r *intercepted) Leave(ctx context.Context, machineID, session string) error {
	if f := r.funcs.Leave; f != nil {
		return f(ctx, r.reg, machineID, session)
	}
	return r.reg.Leave(ctx, machineID, session)
}

func (r *intercepted) Machines(ctx context.Context) ([]core.MachineState, error) {
	if f := r.funcs.Machines; f != nil {
		return f(ctx, r.reg)
	}
	return r.reg.Machines(ctx)
}

func (r *intercepted) Machine(ctx context.Context, id string) (core.MachineState, error) {
	if f := r.funcs.Machine; f != nil {
		return f(ctx, r.reg, id)
	}
	return r.reg.Machine(ctx, id)
}

func (r *intercepted) PatchMetadata(ctx context.Context, ops []core.MetadataOp) error {
	if f := r.funcs.PatchMetadata; f != nil {
		return f(ctx, r.reg, ops)
	}
	return r.reg.PatchMetadata(ctx, ops)
}

func (r *intercepted) PublishUnitStates(ctx context.Context, machineID, session string, states []core.UnitState, removed []string) error {
	if f := r.funcs.PublishUnitStates; f != nil {
		return f(ctx, r.reg, machineID, session, states, removed)
	}
	return r.reg.PublishUnitStates(ctx, machineID, session, states, removed)
}

func (r *intercepted) UnitStates(ctx context.Context) ([]core.UnitState, error) {
	if f := r.funcs.UnitStates; f != nil {
		return f(ctx, r.reg)
	}
	return r.reg.UnitStates(ctx)
}

func (r *intercepted) AcquireLeadership(ctx context.Context, engine, session string, ttl time.Duration) (core.Fence, error) {
	if f := r.funcs.AcquireLeadership; f != nil {
		return f(ctx, r.reg, engine, session, ttl)
	}
	return r.reg.AcquireLeadership(ctx, engine, session, ttl)
}

func (r *intercepted) ResignLeadership(ctx context.Context, fence core.Fence) error {
	if f := r.funcs.ResignLeadership; f != nil {
		return f(ctx, r.reg, fence)
	}
	return r.reg.ResignLeadership(ctx, fence)
}

func (r *intercepted) Notify(ctx context.Context, scope core.Scope) <-chan struct{} {
	if f := r.funcs.Notify; f != nil {
		return f(ctx, r.reg, scope)
	}
	return r.reg.Notify(ctx, scope)
}
