package sim

import (
	"fmt"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
)

func (c *Cluster) machine(id string) (*Machine, error) {
	m := c.byID[id]
	if m == nil {
		return nil, fmt.Errorf("sim: no machine %q", id)
	}
	return m, nil
}

// CrashMachine powers a machine off: its fleetd and its units stop at once, and
// its presence expires after the TTL.
func (c *Cluster) CrashMachine(id string) error {
	m, err := c.machine(id)
	if err != nil || !m.up {
		return err
	}
	m.up = false
	m.gen++
	c.tracef(id, "machine crashes")
	return nil
}

// ReturnMachine boots a crashed machine again: empty systemd, new fleetd session.
func (c *Cluster) ReturnMachine(id string) error {
	m, err := c.machine(id)
	if err != nil || m.up {
		return err
	}
	c.tracef(id, "machine returns")
	c.boot(m, true)
	return nil
}

// RestartFleetd restarts a machine's fleetd (same session, as a restarted daemon
// reads it back); systemd and its units keep running.
func (c *Cluster) RestartFleetd(id string) error {
	m, err := c.machine(id)
	if err != nil || !m.up {
		return err
	}
	c.tracef(id, "fleetd restarts")
	c.boot(m, false)
	return nil
}

// Partition cuts a machine off from the registry (on) or reconnects it (off).
// Its units keep running meanwhile.
func (c *Cluster) Partition(id string, on bool) error {
	m, err := c.machine(id)
	if err != nil {
		return err
	}
	m.partitioned = on
	c.wakeDirty = true
	c.tracef(id, "partitioned=%t", on)
	if !on {
		c.wakeAgent(m, c.clock.Now())
		c.wakeEngine(m, c.clock.Now())
	}
	return nil
}

// RegistryDown makes the registry unreachable for everyone (on) or brings it back.
func (c *Cluster) RegistryDown(on bool) {
	c.registryDown = on
	c.wakeDirty = true
	c.tracef("-", "registry down=%t", on)
	if !on {
		for _, m := range c.machines {
			c.wakeAgent(m, c.clock.Now())
			c.wakeEngine(m, c.clock.Now())
		}
	}
}

// StallEngine pauses a machine's engine for d, as a long GC pause or a stopped
// process would; it resumes where it was.
func (c *Cluster) StallEngine(id string, d time.Duration) error {
	m, err := c.machine(id)
	if err != nil {
		return err
	}
	m.stallUntil = c.clock.Now().Add(d)
	c.tracef(id, "engine stalls for %s", d)
	return nil
}

// PauseEngineWrite pauses a machine's engine for d in its next pass that
// writes the schedule, between its snapshot and its write, as a GC pause or a
// frozen VM would: the cluster runs on meanwhile (another engine may take the
// lease), then the write goes out with the fence the engine had, and fencing
// must reject it if the lease moved.
func (c *Cluster) PauseEngineWrite(id string, d time.Duration) error {
	m, err := c.machine(id)
	if err != nil {
		return err
	}
	if m.engine == nil {
		return fmt.Errorf("sim: machine %s runs no engine", id)
	}
	m.pauseWrite = d
	c.tracef(id, "engine will pause %s before its next write", d)
	return nil
}

// pauseBeforeWrite runs the cluster on for m's armed pause, with m's engine
// pass suspended in its write, and restores what the checker learnt of that
// pass before the pause. It fails if m's fleetd ended meanwhile: a dead
// process writes nothing.
func (c *Cluster) pauseBeforeWrite(m *Machine) error {
	if m == nil || m.pauseWrite <= 0 || c.pausing {
		// One pause at a time: a pause armed during another stays armed.
		return nil
	}
	c.pausing = true
	defer func() { c.pausing = false }()
	d, gen := m.pauseWrite, m.gen
	m.pauseWrite, m.pausedUntil = 0, c.clock.Now().Add(d)
	before := c.beforePass
	c.tracef(m.ID, "engine paused between its snapshot and its write for %s", d)
	if err := c.RunUntil(m.pausedUntil, nil); err != nil {
		c.tracef(m.ID, "during the pause: %v", err)
	}
	m.pausedUntil, c.beforePass = time.Time{}, before
	if m.gen != gen || !m.up {
		return fmt.Errorf("sim: the fleetd of %s ended while its engine was paused", m.ID)
	}
	c.tracef(m.ID, "engine resumes its write")
	m.pausedPass = true
	return nil
}

// StopUnitBehindBack stops a unit with systemctl on a machine, behind fleet's back.
func (c *Cluster) StopUnitBehindBack(id, unit string) error {
	return c.onSystemd(id, "systemctl stop "+unit, func(sd *systemd) error { return sd.StopBehindBack(unit) })
}

// CrashUnit kills a unit's main process on a machine.
func (c *Cluster) CrashUnit(id, unit string) error {
	return c.onSystemd(id, "unit crashes: "+unit, func(sd *systemd) error { return sd.Crash(unit) })
}

// RestartSystemd restarts a machine's systemd manager.
func (c *Cluster) RestartSystemd(id string) error {
	return c.onSystemd(id, "systemd restarts", func(sd *systemd) error { sd.Restart(); return nil })
}

// FailStarts makes every start job on a machine fail (on) or succeed again.
func (c *Cluster) FailStarts(id string, on bool) error {
	return c.onSystemd(id, fmt.Sprintf("start jobs fail=%t", on), func(sd *systemd) error {
		if !on {
			sd.SetFaults(fakesystemd.Faults{})
			return nil
		}
		units, err := sd.Units(c.ctx)
		if err != nil {
			return err
		}
		fails := map[string]bool{}
		for _, u := range units {
			fails[u.Name] = true
		}
		sd.SetFaults(fakesystemd.Faults{StartFails: fails, CallError: nil})
		return nil
	})
}

func (c *Cluster) onSystemd(id, what string, f func(*systemd) error) error {
	m, err := c.machine(id)
	if err != nil {
		return err
	}
	if !m.up {
		return fmt.Errorf("sim: machine %s is down", id)
	}
	c.tracef(id, "%s", what)
	if err := f(m.sd); err != nil {
		return fmt.Errorf("sim: %s on %s: %w", what, id, err)
	}
	c.wakeAgent(m, c.clock.Now().Add(c.cfg.NotifyDelay))
	c.wakeSystemd(m)
	return nil
}

// Heal ends every ongoing fault: partitions, registry outage, engine stalls,
// failing starts; crashed machines come back.
func (c *Cluster) Heal() {
	c.tracef("-", "heal")
	if c.regFaults != (RegistryFaults{}) {
		c.SetRegistryFaults(RegistryFaults{})
	}
	if c.registryDown {
		c.RegistryDown(false)
	}
	for _, m := range c.machines {
		if !m.up {
			c.ReturnMachine(m.ID)
		}
		if m.partitioned {
			c.Partition(m.ID, false)
		}
		m.stallUntil = time.Time{}
		m.sd.SetFaults(fakesystemd.Faults{})
	}
}
