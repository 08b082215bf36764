package sim

import (
	"context"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/core"
)

// systemd is a machine's fake systemd.
type systemd = fakesystemd.Manager

func newSystemd(clock core.Clock, job time.Duration) *systemd {
	return fakesystemd.New(clock, fakesystemd.WithJobDuration(job))
}

// started is a start that one fleetd incarnation asked of its systemd and
// systemd accepted: the contents of the unit's file then, the manager instance
// that accepted it, and when (the cluster's sequence of user commands and
// starts).
type started struct {
	hash     core.Hash
	instance string
	seq      uint64
}

// startLog is the checker's record of what a machine's current fleetd really
// started, kept by watching its calls to systemd (not by asking the agent).
// A launched unit that ran and ended is settled if it was started with its
// current contents after the user last set it launched, by the manager
// instance now running: fleet starts a unit once per revision and manager
// instance and leaves restarting to systemd.
type startLog struct {
	c     *Cluster
	sd    *systemd
	byRun map[string]started
}

var _ core.UnitManager = (*startLog)(nil)

func newStartLog(c *Cluster, sd *systemd) *startLog {
	return &startLog{c: c, sd: sd, byRun: map[string]started{}}
}

func (l *startLog) WriteUnit(ctx context.Context, name string, contents []byte) error {
	return l.sd.WriteUnit(ctx, name, contents)
}

// RemoveUnit forgets the unit's start once its file is gone: a unit placed
// here again is a new placement, to be started again.
func (l *startLog) RemoveUnit(ctx context.Context, name string) error {
	err := l.sd.RemoveUnit(ctx, name)
	if err == nil {
		delete(l.byRun, name)
	}
	return err
}

func (l *startLog) Reload(ctx context.Context) error { return l.sd.Reload(ctx) }

// Start records an accepted start with the contents of the file systemd has
// loaded for the unit.
func (l *startLog) Start(ctx context.Context, name string) error {
	if err := l.sd.Start(ctx, name); err != nil {
		return err
	}
	units, err := l.sd.Units(ctx)
	if err != nil {
		return err
	}
	for _, u := range units {
		if u.Name == name {
			l.c.opSeq++
			l.byRun[name] = started{hash: u.Hash, instance: l.sd.Instance(), seq: l.c.opSeq}
		}
	}
	return nil
}

func (l *startLog) Stop(ctx context.Context, name string) error { return l.sd.Stop(ctx, name) }

func (l *startLog) Units(ctx context.Context) ([]core.UnitStatus, error) { return l.sd.Units(ctx) }

func (l *startLog) Notify(ctx context.Context) <-chan struct{} { return l.sd.Notify(ctx) }

func (l *startLog) Instance() string { return l.sd.Instance() }

// wakeSystemd schedules m's systemd to apply its next due state change, which
// wakes the agent as a D-Bus signal would.
func (c *Cluster) wakeSystemd(m *Machine) {
	d, ok := m.sd.NextDeadline()
	if !m.up || !ok {
		return
	}
	at := d.Add(-m.skew)
	if !m.sdAt.IsZero() && !m.sdAt.After(at) {
		return
	}
	if at.Before(c.clock.Now()) {
		at = c.clock.Now()
	}
	m.sdAt = at
	c.schedule(&event{at: at, kind: evSystemd, machine: m, gen: m.gen})
}

// systemdStep applies m's due state changes.
func (c *Cluster) systemdStep(m *Machine) {
	if m.sd.Step() {
		c.wakeAgent(m, c.clock.Now().Add(c.cfg.NotifyDelay))
	}
	c.wakeSystemd(m)
}
