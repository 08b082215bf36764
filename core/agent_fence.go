package core

import (
	"context"
	"fmt"
	"time"
)

// Self-fencing. The presence lease a renewal sent at time t lasts at least
// until t + TTL, however late etcd receives it, so an agent that stops its
// units once FenceGrace < TTL has passed since its last successful renewal
// was sent has stopped them before the engine can see the machine gone and
// place them elsewhere (plus the time systemd takes to stop them). A fenced
// agent touches only the unit manager: the registry is unreachable, or the
// renewal would have succeeded.

// PresenceRenewed tells the agent that a renewal of its presence sent at
// sent succeeded (with ExternalPresence; Reconcile records its own
// otherwise). A later time only moves the record forward.
func (a *Agent) PresenceRenewed(sent time.Time) {
	if sent.After(a.renewed) {
		a.renewed = sent
	}
}

// Fenced reports whether a pass at now would fence: self-fencing is on, a
// renewal has succeeded once, and none was sent since now - FenceGrace.
func (a *Agent) Fenced(now time.Time) bool {
	return a.cfg.FenceGrace > 0 && !a.renewed.IsZero() && now.Sub(a.renewed) > a.cfg.FenceGrace
}

// Unrenewed is how long before now the last successful renewal was sent
// (zero before the first).
func (a *Agent) Unrenewed(now time.Time) time.Duration {
	if a.renewed.IsZero() {
		return 0
	}
	return now.Sub(a.renewed)
}

// fence is the pass of a fenced agent: stop every running unit of this
// machine, start none, read and write nothing in the registry. A unit it
// stops loses its start record, so that once unfenced the agent starts it
// again if it is still scheduled here; a unit that had ended before is left
// as it was. The pass comes back every TTL/3 to stop what may have started
// since (and, without ExternalPresence, to try the renewal again).
func (a *Agent) fence(ctx context.Context, now time.Time) (AgentResult, error) {
	a.fenced, a.resync = true, true
	res := AgentResult{Fenced: true, NextWake: now.Add(a.cfg.TTL / 3)}
	actual, err := a.mgr.Units(ctx)
	if err != nil {
		return res, fmt.Errorf("agent %s: fenced: list units: %w", a.cfg.Machine.ID, err)
	}
	res.Units = len(actual)
	var stops []Task
	for _, s := range actual {
		if s.Running() {
			stops = append(stops, Task{Kind: TaskStop, Unit: s.Name, Reason: "fenced"})
		}
	}
	res.Tasks, res.Failures = a.run(ctx, stops, now)
	for _, t := range res.Tasks {
		delete(a.starts, t.Unit)
	}
	if len(res.Failures) > 0 {
		return res, fmt.Errorf("agent %s: fenced: %d of %d stops failed, first: %s", a.cfg.Machine.ID, len(res.Failures), len(stops), res.Failures[0])
	}
	return res, nil
}
