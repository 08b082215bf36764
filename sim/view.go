package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// view is one machine's connection to the registry. It fails every call with
// core.ErrUnavailable while the machine is partitioned or the registry is down,
// and records the fences of accepted schedule writes for the leasing invariant.
type view struct {
	c       *Cluster
	machine *Machine
	base    core.Registry
}

var _ core.Registry = (*view)(nil)

func (v *view) check(op string) error {
	switch {
	case v.c.registryDown:
		return fmt.Errorf("%s from %s: registry down: %w", op, v.machine.ID, core.ErrUnavailable)
	case v.machine.partitioned:
		return fmt.Errorf("%s from %s: partitioned: %w", op, v.machine.ID, core.ErrUnavailable)
	}
	v.c.stats.registryCalls++
	return nil
}

func (v *view) CreateUnit(ctx context.Context, u core.Unit, contents []byte) error {
	if err := v.check("CreateUnit"); err != nil {
		return err
	}
	v.c.wakeDirty = true
	return v.base.CreateUnit(ctx, u, contents)
}

func (v *view) DestroyUnit(ctx context.Context, name string) error {
	if err := v.check("DestroyUnit"); err != nil {
		return err
	}
	v.c.wakeDirty = true
	return v.base.DestroyUnit(ctx, name)
}

func (v *view) ReplaceUnit(ctx context.Context, u core.Unit, contents []byte) error {
	if err := v.check("ReplaceUnit"); err != nil {
		return err
	}
	v.c.wakeDirty = true
	return v.base.ReplaceUnit(ctx, u, contents)
}

func (v *view) SetTargetState(ctx context.Context, name string, s core.JobState) error {
	if err := v.check("SetTargetState"); err != nil {
		return err
	}
	v.c.wakeDirty = true
	return v.base.SetTargetState(ctx, name, s)
}

func (v *view) Unit(ctx context.Context, name string) (core.Unit, error) {
	if err := v.check("Unit"); err != nil {
		return core.Unit{}, err
	}
	return v.base.Unit(ctx, name)
}

func (v *view) Units(ctx context.Context) ([]core.Unit, error) {
	if err := v.check("Units"); err != nil {
		return nil, err
	}
	return v.base.Units(ctx)
}

func (v *view) GlobalUnits(ctx context.Context) ([]core.Unit, error) {
	if err := v.check("GlobalUnits"); err != nil {
		return nil, err
	}
	return v.base.GlobalUnits(ctx)
}

func (v *view) UnitContents(ctx context.Context, h core.Hash) ([]byte, error) {
	if err := v.check("UnitContents"); err != nil {
		return nil, err
	}
	return v.base.UnitContents(ctx, h)
}

func (v *view) Placements(ctx context.Context) ([]core.Placement, error) {
	if err := v.check("Placements"); err != nil {
		return nil, err
	}
	return v.base.Placements(ctx)
}

func (v *view) MachinePlacements(ctx context.Context, machine string) ([]core.Placement, error) {
	if err := v.check("MachinePlacements"); err != nil {
		return nil, err
	}
	return v.base.MachinePlacements(ctx, machine)
}

func (v *view) ApplySchedule(ctx context.Context, fence core.Fence, ops []core.ScheduleOp) ([]string, error) {
	if err := v.check("ApplySchedule"); err != nil {
		return nil, err
	}
	skipped, err := v.base.ApplySchedule(ctx, fence, ops)
	v.c.wakeDirty = true
	v.c.onWrite(fence, err)
	if errors.Is(err, core.ErrStaleFence) {
		// Each backend words this its own way, with its own epoch numbers;
		// the trace says it the same way on all.
		err = fmt.Errorf("registry: ApplySchedule: fence %s/%d: %w", fence.Engine, v.c.leasing.epochOrdinal(fence.Epoch), core.ErrStaleFence)
	}
	return skipped, err
}

func (v *view) Heartbeat(ctx context.Context, m core.MachineState, session string, ttl time.Duration) error {
	if err := v.check("Heartbeat"); err != nil {
		return err
	}
	err := v.base.Heartbeat(ctx, m, session, ttl)
	if err == nil {
		v.c.heartbeat(v.machine)
	}
	return err
}

func (v *view) Leave(ctx context.Context, machineID, session string) error {
	if err := v.check("Leave"); err != nil {
		return err
	}
	v.c.wakeDirty = true
	return v.base.Leave(ctx, machineID, session)
}

func (v *view) Machines(ctx context.Context) ([]core.MachineState, error) {
	if err := v.check("Machines"); err != nil {
		return nil, err
	}
	return v.base.Machines(ctx)
}

func (v *view) Machine(ctx context.Context, id string) (core.MachineState, error) {
	if err := v.check("Machine"); err != nil {
		return core.MachineState{}, err
	}
	return v.base.Machine(ctx, id)
}

func (v *view) PatchMetadata(ctx context.Context, ops []core.MetadataOp) error {
	if err := v.check("PatchMetadata"); err != nil {
		return err
	}
	v.c.wakeDirty = true
	return v.base.PatchMetadata(ctx, ops)
}

func (v *view) PublishUnitStates(ctx context.Context, machineID, session string, states []core.UnitState, removed []string) error {
	if err := v.check("PublishUnitStates"); err != nil {
		return err
	}
	return v.base.PublishUnitStates(ctx, machineID, session, states, removed)
}

func (v *view) UnitStates(ctx context.Context) ([]core.UnitState, error) {
	if err := v.check("UnitStates"); err != nil {
		return nil, err
	}
	return v.base.UnitStates(ctx)
}

func (v *view) AcquireLeadership(ctx context.Context, engine, session string, ttl time.Duration) (core.Fence, error) {
	if err := v.check("AcquireLeadership"); err != nil {
		return core.Fence{}, err
	}
	f, err := v.base.AcquireLeadership(ctx, engine, session, ttl)
	if err == nil {
		v.c.onAcquire(f)
		// What the leader is about to plan from, for the placement check.
		v.c.beforePass = v.c.snapshotForCheck()
	}
	return f, err
}

func (v *view) ResignLeadership(ctx context.Context, fence core.Fence) error {
	if err := v.check("ResignLeadership"); err != nil {
		return err
	}
	return v.base.ResignLeadership(ctx, fence)
}

func (v *view) Notify(ctx context.Context, scope core.Scope) <-chan struct{} {
	return v.base.Notify(ctx, scope)
}
