package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// RegistryFaults are the rates, from 0 to 1, of the registry faults injected
// into the calls of every fleetd and of the client, through Intercept, on any
// backend. Which call fails is drawn from the seed. The zero value injects
// none; Heal sets it back to zero.
type RegistryFaults struct {
	// LoseReply is the rate of writes that the registry applies but whose
	// reply is lost: the caller sees core.ErrUnavailable.
	LoseReply float64
	// SlowCall is the rate of calls slower than the caller's deadline, which
	// give up before reaching the registry: the caller sees
	// context.DeadlineExceeded and core.ErrUnavailable.
	SlowCall float64
	// DropWakeup is the rate of Notify wake-ups lost on their way to a fleetd.
	DropWakeup float64
}

func (f RegistryFaults) String() string {
	return fmt.Sprintf("lose-reply=%g slow-call=%g drop-wakeup=%g", f.LoseReply, f.SlowCall, f.DropWakeup)
}

// SetRegistryFaults sets the rates of registry faults from now on.
func (c *Cluster) SetRegistryFaults(f RegistryFaults) {
	c.regFaults = f
	c.tracef("-", "registry faults: %s", f)
}

// strikes draws whether a fault of rate p strikes now. It draws nothing when
// p is zero, so that runs without registry faults keep their traces.
func (c *Cluster) strikes(p float64) bool {
	return p > 0 && c.faultRNG.Float64() < p
}

// slow fails op from who when a slow call strikes.
func (c *Cluster) slow(who, op string) error {
	if !c.strikes(c.regFaults.SlowCall) {
		return nil
	}
	c.tracef(who, "registry fault: %s timed out", op)
	return fmt.Errorf("%s from %s: %w: %w", op, who, core.ErrUnavailable, context.DeadlineExceeded)
}

// lost replaces the reply of op from who, which the registry applied, by an
// error when a lost reply strikes.
func (c *Cluster) lost(who, op string, err error) error {
	if err != nil || !c.strikes(c.regFaults.LoseReply) {
		return err
	}
	c.tracef(who, "registry fault: reply to %s lost", op)
	return fmt.Errorf("%s from %s: reply lost: %w", op, who, core.ErrUnavailable)
}

// read intercepts a read: it may be slow.
func read[T any](c *Cluster, who, op string, f func() (T, error)) (T, error) {
	if err := c.slow(who, op); err != nil {
		var zero T
		return zero, err
	}
	return f()
}

// write intercepts a write: it may be slow, or applied with its reply lost.
func write[T any](c *Cluster, who, op string, f func() (T, error)) (T, error) {
	if err := c.slow(who, op); err != nil {
		var zero T
		return zero, err
	}
	v, err := f()
	if err = c.lost(who, op, err); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// write0 is write for calls that return only an error.
func write0(c *Cluster, who, op string, f func() error) error {
	_, err := write(c, who, op, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// faultFuncs are the registry faults of who's calls.
func (c *Cluster) faultFuncs(who string) RegistryFuncs {
	return RegistryFuncs{
		CreateUnit: func(ctx context.Context, reg core.Registry, u core.Unit, contents []byte) error {
			return write0(c, who, "CreateUnit", func() error { return reg.CreateUnit(ctx, u, contents) })
		},
		DestroyUnit: func(ctx context.Context, reg core.Registry, name string) error {
			return write0(c, who, "DestroyUnit", func() error { return reg.DestroyUnit(ctx, name) })
		},
		SetTargetState: func(ctx context.Context, reg core.Registry, name string, s core.JobState) error {
			return write0(c, who, "SetTargetState", func() error { return reg.SetTargetState(ctx, name, s) })
		},
		Units: func(ctx context.Context, reg core.Registry) ([]core.Unit, error) {
			return read(c, who, "Units", func() ([]core.Unit, error) { return reg.Units(ctx) })
		},
		GlobalUnits: func(ctx context.Context, reg core.Registry) ([]core.Unit, error) {
			return read(c, who, "GlobalUnits", func() ([]core.Unit, error) { return reg.GlobalUnits(ctx) })
		},
		UnitContents: func(ctx context.Context, reg core.Registry, h core.Hash) ([]byte, error) {
			return read(c, who, "UnitContents", func() ([]byte, error) { return reg.UnitContents(ctx, h) })
		},
		Placements: func(ctx context.Context, reg core.Registry) ([]core.Placement, error) {
			return read(c, who, "Placements", func() ([]core.Placement, error) { return reg.Placements(ctx) })
		},
		MachinePlacements: func(ctx context.Context, reg core.Registry, m string) ([]core.Placement, error) {
			return read(c, who, "MachinePlacements", func() ([]core.Placement, error) { return reg.MachinePlacements(ctx, m) })
		},
		ApplySchedule: func(ctx context.Context, reg core.Registry, f core.Fence, ops []core.ScheduleOp) ([]string, error) {
			if err := c.pauseBeforeWrite(c.byID[who]); err != nil {
				return nil, err
			}
			return write(c, who, "ApplySchedule", func() ([]string, error) { return reg.ApplySchedule(ctx, f, ops) })
		},
		Heartbeat: func(ctx context.Context, reg core.Registry, m core.MachineState, session string, ttl time.Duration) error {
			return write0(c, who, "Heartbeat", func() error { return reg.Heartbeat(ctx, m, session, ttl) })
		},
		Machines: func(ctx context.Context, reg core.Registry) ([]core.MachineState, error) {
			return read(c, who, "Machines", func() ([]core.MachineState, error) { return reg.Machines(ctx) })
		},
		Machine: func(ctx context.Context, reg core.Registry, id string) (core.MachineState, error) {
			return read(c, who, "Machine", func() (core.MachineState, error) { return reg.Machine(ctx, id) })
		},
		PublishUnitStates: func(ctx context.Context, reg core.Registry, id, session string, states []core.UnitState, removed []string) error {
			return write0(c, who, "PublishUnitStates", func() error { return reg.PublishUnitStates(ctx, id, session, states, removed) })
		},
		AcquireLeadership: func(ctx context.Context, reg core.Registry, engine, session string, ttl time.Duration) (core.Fence, error) {
			return write(c, who, "AcquireLeadership", func() (core.Fence, error) { return reg.AcquireLeadership(ctx, engine, session, ttl) })
		},
		ResignLeadership: func(ctx context.Context, reg core.Registry, f core.Fence) error {
			return write0(c, who, "ResignLeadership", func() error { return reg.ResignLeadership(ctx, f) })
		},
	}
}
