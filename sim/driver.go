package sim

import (
	"time"
)

// wakeAgent asks for m's agent pass at time at, unless one is already due by then.
func (c *Cluster) wakeAgent(m *Machine, at time.Time) {
	if !m.up || (!m.agentAt.IsZero() && !m.agentAt.After(at)) {
		return
	}
	if at.Before(c.clock.Now()) {
		at = c.clock.Now()
	}
	m.agentAt = at
	c.schedule(&event{at: at, kind: evAgent, machine: m, gen: m.gen})
}

// wakeEngine asks for m's engine pass at time at, unless one is already due by then.
func (c *Cluster) wakeEngine(m *Machine, at time.Time) {
	if !m.up || m.engine == nil || (!m.engineAt.IsZero() && !m.engineAt.After(at)) {
		return
	}
	if at.Before(c.clock.Now()) {
		at = c.clock.Now()
	}
	m.engineAt = at
	c.schedule(&event{at: at, kind: evEngine, machine: m, gen: m.gen})
}

// wakeEngines wakes every engine at time at, as a watch event would: something
// changed that the engine must plan for.
func (c *Cluster) wakeEngines(at time.Time) {
	c.planned = false
	for _, m := range c.engines {
		c.wakeEngine(m, at)
	}
}

// at schedules an action (a fault or a user step) at virtual time t.
func (c *Cluster) at(t time.Time, name string, do func()) {
	c.schedule(&event{at: t, kind: evAction, name: name, do: do})
}

// RunFor runs the simulation for d of virtual time. It returns the first
// invariant violation, if any (the run stops there).
func (c *Cluster) RunFor(d time.Duration) error {
	return c.RunUntil(c.clock.Now().Add(d), nil)
}

// RunUntil runs events up to time end, or until stop (checked after each event)
// returns true, or until an invariant fails.
func (c *Cluster) RunUntil(end time.Time, stop func() bool) error {
	for {
		t, ok := c.peekTime()
		if !ok || t.After(end) {
			c.clock.set(end)
			c.expire()
			return c.firstViolation()
		}
		e := c.next()
		c.clock.set(e.at)
		c.expire()
		c.step(e)
		if err := c.firstViolation(); err != nil {
			return err
		}
		if stop != nil && stop() {
			return nil
		}
	}
}

// expire applies lease expiry up to now.
func (c *Cluster) expire() {
	if err := c.backend.Expire(); err != nil {
		c.tracef("-", "registry expire: %v", err)
	}
}

// step runs one event.
func (c *Cluster) step(e *event) {
	c.stats.events++
	switch e.kind {
	case evAgent:
		if due(e, &e.machine.agentAt) {
			c.agentPass(e.machine)
		}
	case evEngine:
		if due(e, &e.machine.engineAt) {
			c.enginePass(e.machine)
		}
	case evSystemd:
		if due(e, &e.machine.sdAt) {
			c.systemdStep(e.machine)
		}
	case evExpiry:
		c.checkExpiry(e.machine)
	case evAction:
		c.tracef("-", "%s", e.name)
		e.do()
	}
}

// due reports whether e is the pending wake-up in slot (one of its machine's
// next-pass times), not one superseded or from before a reboot, and clears slot.
func due(e *event, slot *time.Time) bool {
	m := e.machine
	if e.gen != m.gen || !m.up || !e.at.Equal(*slot) {
		return false
	}
	*slot = time.Time{}
	return true
}

// agentPass runs m's agent and schedules its next passes.
func (c *Cluster) agentPass(m *Machine) {
	c.stats.agentPasses++
	now := c.clock.Now()
	res, err := m.agent.Reconcile(c.ctx, now.Add(m.skew))
	for _, t := range res.Tasks {
		c.tracef(m.ID, "agent: %s", t)
	}
	for _, f := range res.Failures {
		c.tracef(m.ID, "agent: failed %s", f)
	}
	if err != nil {
		c.tracef(m.ID, "agent: %v", err)
	}
	c.stats.tasks += len(res.Tasks)
	c.wakeSystemd(m)
	if !res.NextWake.IsZero() {
		c.wakeAgent(m, res.NextWake.Add(-m.skew))
	}
}

// enginePass runs m's engine, checks the invariants that concern decisions, and
// wakes the agents the decisions concern.
func (c *Cluster) enginePass(m *Machine) {
	now := c.clock.Now()
	if now.Before(m.stallUntil) {
		c.wakeEngine(m, m.stallUntil)
		return
	}
	c.stats.enginePasses++
	c.beforePass = nil
	res, err := m.engine.Reconcile(c.ctx, now.Add(m.skew))
	before := c.beforePass
	for _, d := range res.Decisions {
		c.tracef(m.ID, "engine: %s", d)
	}
	if err != nil {
		c.tracef(m.ID, "engine: %v", err)
	}
	if res.Leader && err == nil {
		c.afterLeaderPass(m, res, before)
	}
	if !res.NextWake.IsZero() {
		c.wakeEngine(m, res.NextWake.Add(-m.skew))
	}
}

// heartbeat is called by a machine's view after each accepted heartbeat: the
// presence now lives until now + TTL, when an expiry check runs.
func (c *Cluster) heartbeat(m *Machine) {
	first := m.lastBeat.IsZero() || c.clock.Now().Sub(m.lastBeat) >= c.cfg.AgentTTL
	m.lastBeat = c.clock.Now()
	if first {
		delete(c.expiredAt, m.ID)
	}
	c.schedule(&event{at: m.lastBeat.Add(c.cfg.AgentTTL), kind: evExpiry, machine: m})
	if first {
		c.wakeEngines(c.clock.Now().Add(c.cfg.NotifyDelay))
	}
}

// checkExpiry runs when m's presence may have expired: if it was not renewed, the
// registry drops it and the engines are woken, as a watch on machines would.
func (c *Cluster) checkExpiry(m *Machine) {
	if c.clock.Now().Before(m.lastBeat.Add(c.cfg.AgentTTL)) {
		return
	}
	if _, done := c.expiredAt[m.ID]; done {
		return
	}
	c.expiredAt[m.ID] = c.clock.Now()
	c.tracef(m.ID, "presence expired")
	c.wakeEngines(c.clock.Now().Add(c.cfg.NotifyDelay))
}
