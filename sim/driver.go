package sim

import (
	"context"
	"errors"
	"time"

	"github.com/fleet-rebuild/fleet/core"
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

// watch subscribes m's new fleetd to the registry's wake-ups: its agent to its
// machine's scope, its engine to the engine's scope, as the production driver
// does. The subscriptions are made once per machine and kept across its
// reboots, a wake-up meant for a previous fleetd being dropped, which is the
// same as subscribing afresh (the new fleetd's first passes read everything)
// without cancelling watches mid-run.
func (c *Cluster) watch(m *Machine) {
	c.wakeDirty = true
	if m.stopWatch != nil {
		fired(m.agentWake)
		fired(m.engineWake)
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	m.stopWatch = cancel
	m.agentWake = c.backend.Registry.Notify(ctx, core.Scope{Machine: m.ID})
	if m.RunsEngine {
		m.engineWake = c.backend.Registry.Notify(ctx, core.Scope{})
	}
}

// unwatch ends m's subscriptions (the cluster is closing).
func (m *Machine) unwatch() {
	if m.stopWatch != nil {
		m.stopWatch()
	}
	m.stopWatch, m.agentWake, m.engineWake = nil, nil, nil
}

// deliverWakeups is the only place where changes in the registry wake agents
// and engines: it drains every Notify channel without blocking and schedules
// a pass, NotifyDelay later, for each one that fired. A machine cut off from
// the registry (partitioned, or the registry down) keeps its wake-up pending,
// as a watch resumes after a reconnection.
//
// A change of presence (a machine joining or expiring) is in the engines'
// scope only (core.Scope), so it drains only the engines' channels: no agent's
// channel can have fired since the last full drain, which every other change
// asks for.
func (c *Cluster) deliverWakeups() {
	if !c.wakeDirty && !c.enginesDirty {
		return
	}
	machines := c.machines
	if !c.wakeDirty {
		machines = c.engines
	}
	c.wakeDirty, c.enginesDirty = false, false
	if c.backend.Settle != nil {
		if err := c.backend.Settle(); err != nil {
			c.tracef("-", "registry settle: %v", err)
		}
	}
	if c.registryDown {
		return
	}
	at := c.clock.Now().Add(c.cfg.NotifyDelay)
	for _, m := range machines {
		if !m.up || m.partitioned {
			continue
		}
		if fired(m.agentWake) && !c.dropped(m, "agent") {
			c.wakeAgent(m, at)
		}
		if fired(m.engineWake) && !c.dropped(m, "engine") {
			c.wakeEngine(m, at)
		}
	}
}

// dropped draws whether a wake-up of m's role is lost (RegistryFaults).
func (c *Cluster) dropped(m *Machine, role string) bool {
	if !c.strikes(c.regFaults.DropWakeup) {
		return false
	}
	c.tracef(m.ID, "registry fault: %s wake-up dropped", role)
	return true
}

// fired reports whether ch has a wake-up, without blocking.
func fired(ch <-chan struct{}) bool {
	select {
	case _, ok := <-ch:
		return ok
	default:
		return false
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

// ErrInterrupted is returned by the runs when Config.Context is done.
var ErrInterrupted = errors.New("sim: run interrupted")

// RunUntil runs events up to time end, or until stop (checked after each event)
// returns true, or until an invariant fails, or until Config.Context is done.
func (c *Cluster) RunUntil(end time.Time, stop func() bool) error {
	for {
		select {
		case <-c.interrupt:
			return ErrInterrupted
		default:
		}
		c.deliverWakeups()
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
	if !m.pausedUntil.IsZero() {
		// Its pass is still in progress, paused before its write.
		c.wakeEngine(m, later(now, m.pausedUntil).Add(c.cfg.NotifyDelay))
		return
	}
	c.stats.enginePasses++
	c.beforePass = nil
	res, err := m.engine.Reconcile(c.ctx, now.Add(m.skew))
	before := c.beforePass
	paused := m.pausedPass
	m.pausedPass = false
	for _, d := range res.Decisions {
		c.tracef(m.ID, "engine: %s", d)
	}
	if err != nil {
		c.tracef(m.ID, "engine: %v", err)
	}
	if res.Leader && err == nil {
		c.afterLeaderPass(m, res, before, paused)
	}
	if !res.NextWake.IsZero() {
		c.wakeEngine(m, res.NextWake.Add(-m.skew))
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
		// A new presence is a change for the engines; a renewal is a
		// keep-alive that wakes nobody.
		c.planned = false
		c.enginesDirty = true
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
	c.planned = false
	c.enginesDirty = true
}
