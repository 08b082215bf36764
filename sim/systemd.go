package sim

import (
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/core"
)

// systemd is a machine's fake systemd.
type systemd = fakesystemd.Manager

func newSystemd(clock core.Clock, job time.Duration) *systemd {
	return fakesystemd.New(clock, fakesystemd.WithJobDuration(job))
}

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
