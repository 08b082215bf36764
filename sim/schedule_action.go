package sim

import "time"

// At schedules do to run at virtual time t, traced as name. Actions at the same
// time run in an order the seed decides. An action in the past runs at once.
func (c *Cluster) At(t time.Time, name string, do func()) {
	if t.Before(c.clock.Now()) {
		t = c.clock.Now()
	}
	c.at(t, name, do)
}

// Failovers lists the units moved off machines that went away, in the order the
// engine moved them, with their virtual latencies.
func (c *Cluster) Failovers() []Failover {
	return append([]Failover(nil), c.failovers...)
}

// Work counts what a simulation did so far.
type Work struct {
	Events        int // events run (passes, expiries, systemd steps, actions)
	EnginePasses  int // engine passes run, leading or not
	AgentPasses   int // agent passes run
	Tasks         int // agent tasks run
	RegistryCalls int // registry calls that reached the registry
	Decisions     int // decisions written by leaders
}

// Work returns the work counters so far.
func (c *Cluster) Work() Work {
	s := c.stats
	return Work{
		Events: s.events, EnginePasses: s.enginePasses, AgentPasses: s.agentPasses,
		Tasks: s.tasks, RegistryCalls: s.registryCalls, Decisions: s.decisions,
	}
}
