package fakesystemd

import (
	"context"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// WallClock is core.Clock on the real time.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// RealTime drives a Manager by the wall clock, for a real fleetd that runs the
// fake instead of systemd (scale tests: nothing really runs). It is a
// core.UnitManager passing every call to the Manager; Run, on the goroutine of
// its owner, applies the Manager's transitions as they fall due and is woken
// by every call that may queue one.
type RealTime struct {
	*Manager
	kick chan struct{}
}

var _ core.UnitManager = (*RealTime)(nil)

// NewRealTime wraps m, which must run on WallClock.
func NewRealTime(m *Manager) *RealTime {
	return &RealTime{Manager: m, kick: make(chan struct{}, 1)}
}

// Run applies due transitions until ctx is done.
func (r *RealTime) Run(ctx context.Context) {
	for r.waitAndStep(ctx) {
	}
}

// waitAndStep waits for the next due transition (then applies it) or a
// wake-up; false when ctx is done.
func (r *RealTime) waitAndStep(ctx context.Context) bool {
	var due <-chan time.Time
	if at, ok := r.NextDeadline(); ok {
		t := time.NewTimer(max(0, time.Until(at)))
		defer t.Stop()
		due = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-r.kick:
	case <-due:
		r.Step()
	}
	return true
}

func (r *RealTime) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// WriteUnit is Manager.WriteUnit, then a wake-up of Run.
func (r *RealTime) WriteUnit(ctx context.Context, name string, contents []byte) error {
	defer r.wake()
	return r.Manager.WriteUnit(ctx, name, contents)
}

// RemoveUnit is Manager.RemoveUnit, then a wake-up of Run.
func (r *RealTime) RemoveUnit(ctx context.Context, name string) error {
	defer r.wake()
	return r.Manager.RemoveUnit(ctx, name)
}

// Reload is Manager.Reload, then a wake-up of Run.
func (r *RealTime) Reload(ctx context.Context) error {
	defer r.wake()
	return r.Manager.Reload(ctx)
}

// Start is Manager.Start, then a wake-up of Run.
func (r *RealTime) Start(ctx context.Context, name string) error {
	defer r.wake()
	return r.Manager.Start(ctx, name)
}

// Stop is Manager.Stop, then a wake-up of Run.
func (r *RealTime) Stop(ctx context.Context, name string) error {
	defer r.wake()
	return r.Manager.Stop(ctx, name)
}

// SetFaults is Manager.SetFaults, then a wake-up of Run (lifting Frozen may
// leave transitions due).
func (r *RealTime) SetFaults(f Faults) {
	defer r.wake()
	r.Manager.SetFaults(f)
}
