package driver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// presenceLoop renews the presence every TTL/3 from the last successful
// renewal's send time (every FenceGrace/2 if that is shorter, so that one slow
// renewal does not fence the machine), sooner after a failure or a changed
// record. After a gap long enough for the presence (and the unit states
// attached to it) to have lapsed, it has the agent publish everything again.
func (d *Driver) presenceLoop() {
	defer d.loops.Done()
	every := d.cfg.TTL / 3
	if d.cfg.FenceGrace > 0 {
		every = min(every, d.cfg.FenceGrace/2)
	}
	retry := max(d.cfg.TTL/10, 10*time.Millisecond)
	next := d.lastSent.Load().Add(every)
	var failing errorLog
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.beatNow:
		case <-time.After(time.Until(next)):
		}
		sent := d.cfg.Now()
		err := d.cfg.Registry.Heartbeat(d.ctx, *d.machine.Load(), d.cfg.Session, d.cfg.TTL)
		d.cfg.Observer.Heartbeat(err)
		if d.ctx.Err() != nil {
			return
		}
		now := d.cfg.Now()
		if err != nil {
			failing.log(d.cfg.Logger, "presence: renewal failed", err)
			next = now.Add(retry)
			continue
		}
		failing.recovered(d.cfg.Logger, "presence: renewed again")
		if now.Sub(*d.lastBeat.Load()) > d.cfg.TTL/2 {
			d.republish.Store(true)
			kick(d.agentKick)
		}
		d.lastBeat.Store(&now)
		d.lastSent.Store(&sent)
		kick(d.renewed)
		next = sent.Add(every)
	}
}

// fenceLoop watches the time since the last successful renewal was sent.
// When it exceeds FenceGrace it ends the agent's pass in progress and wakes
// the agent, which then fences; when a renewal succeeds again it wakes the
// agent, which then unfences. It never calls the registry or the unit
// manager, so nothing it waits for can hang.
func (d *Driver) fenceLoop() {
	defer d.loops.Done()
	grace := d.cfg.FenceGrace
	fenced := false
	for {
		var timer *time.Timer
		var expiry <-chan time.Time
		if !fenced {
			deadline := d.lastSent.Load().Add(grace)
			timer = time.NewTimer(max(0, deadline.Sub(d.cfg.Now())+time.Millisecond))
			expiry = timer.C
		}
		select {
		case <-d.ctx.Done():
			return
		case <-d.renewed:
		case <-expiry:
		}
		if timer != nil {
			timer.Stop()
		}
		expired := d.cfg.Now().Sub(*d.lastSent.Load()) > grace
		if expired == fenced {
			continue
		}
		fenced = expired
		if fenced {
			d.passMu.Lock()
			if d.cancelPass != nil {
				d.cancelPass()
			}
			d.passMu.Unlock()
		}
		kick(d.agentKick)
	}
}

// agentLoop runs the agent's passes.
func (d *Driver) agentLoop() {
	defer d.loops.Done()
	ctx, a := d.ctx, d.cfg.Agent
	var regWake <-chan struct{}
	if !d.cfg.DisableWatches {
		regWake = d.cfg.Registry.Notify(ctx, core.Scope{Machine: d.cfg.Machine.ID})
	}
	unitWake := d.cfg.Units.Notify(ctx)
	applied := *d.machine.Load()
	var failing errorLog
	fenced := false
	for {
		if m := *d.machine.Load(); !sameMachine(m, applied) {
			if err := a.SetMachine(m); err != nil {
				d.cfg.Logger.Error("agent: machine record", "err", err)
			}
			applied = m
		}
		if d.republish.Swap(false) {
			a.Republish()
		}
		// The pass's cancel is in place before the clock and the last renewal
		// are read: the fence watch, at the grace's end, either ends this
		// pass or ran before and this pass fences by itself.
		pass, cancel := context.WithCancel(ctx)
		d.passMu.Lock()
		d.cancelPass = cancel
		d.passMu.Unlock()
		start := d.cfg.Now()
		a.PresenceRenewed(*d.lastSent.Load())
		res, err := a.Reconcile(pass, start)
		cancel()
		d.cfg.Observer.AgentPass(res, err, d.cfg.Now().Sub(start))
		if ctx.Err() != nil {
			return
		}
		fenced = logFence(d.cfg.Logger, res, fenced, a.Unrenewed(start), d.cfg.FenceGrace)
		logAgent(d.cfg.Logger, res)
		if err != nil {
			failing.log(d.cfg.Logger, "agent: pass failed", err)
		} else {
			failing.recovered(d.cfg.Logger, "agent: passes work again")
		}
		next := res.NextWake
		if d.cfg.DisableWatches {
			next = earliest(next, start.Add(d.cfg.Poll))
		}
		if _, ok := d.wait(ctx, next, &regWake, &unitWake, d.agentKick); !ok {
			return
		}
	}
}

// logFence logs the agent becoming fenced or unfenced, once at each edge,
// and returns whether it is fenced now.
func logFence(log *slog.Logger, res core.AgentResult, was bool, unrenewed, grace time.Duration) bool {
	switch {
	case res.Fenced && !was:
		log.Warn(fmt.Sprintf("fenced: presence not renewed for %v (agent_fence_grace %v): stopping %d units",
			unrenewed.Round(time.Millisecond), grace, len(res.Tasks)+len(res.Failures)))
	case !res.Fenced && was:
		log.Info("unfenced: presence renewed again")
	}
	return res.Fenced
}

func logAgent(log *slog.Logger, res core.AgentResult) {
	for _, t := range res.Tasks {
		log.Info("agent: " + t.String())
	}
	for _, f := range res.Failures {
		log.Warn("agent: failed "+f.Task.String(), "err", f.Err)
	}
}

// engineLoop is one engine's goroutine, stopped by its own context.
type engineLoop struct {
	engine *core.Engine
	cancel context.CancelFunc
	done   chan struct{}
}

func (d *Driver) startEngine(e *core.Engine) *engineLoop {
	ctx, cancel := context.WithCancel(d.ctx)
	l := &engineLoop{engine: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		d.runEngine(ctx, e)
	}()
	return l
}

// stop ends the loop and resigns the lease, so another engine takes over at
// once.
func (l *engineLoop) stop(ctx context.Context) error {
	l.cancel()
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.engine.Resign(ctx)
}

// runEngine runs full passes on changes and lease renewals on its timer.
func (d *Driver) runEngine(ctx context.Context, e *core.Engine) {
	var regWake <-chan struct{}
	if !d.cfg.DisableWatches {
		regWake = d.cfg.Registry.Notify(ctx, core.Scope{})
	}
	var never <-chan struct{}
	// owed: a full pass is due (at the start, after a change in the
	// registry, after a failure).
	owed, lastFull := true, time.Time{}
	var failing errorLog
	var unplaceable map[string]string
	// After a failed pass the engine only renews its lease until a renewal
	// works; if the registry was out of reach long enough for presences to
	// lapse (etcd expires them even while no one reaches it), a machine
	// missing now may be one that has not announced itself again yet, not
	// one that died: planning then waits a presence TTL (hold).
	lastOK, failed, hold := d.cfg.Now(), false, time.Time{}
	// The same holds for an engine that has just started: it has seen no
	// machine go away, and one missing may be one that lost its presence
	// in the outage this fleetd restarts from (a restarted etcd host, a
	// rebooted cluster) and has not announced itself again yet.
	if absent, err := placedOnAbsent(ctx, d.cfg.Registry); err == nil && len(absent) > 0 {
		hold = lastOK.Add(d.cfg.TTL)
		d.cfg.Logger.Warn("engine: units are placed on machines without a presence at start: planning waits a presence TTL for them to announce themselves",
			"machines", len(absent), "first", absent[:min(len(absent), 10)], "ttl", d.cfg.TTL)
	}
	for {
		start := d.cfg.Now()
		var res core.EngineResult
		var err error
		planned := false
		switch {
		case failed || start.Before(hold):
			res, _, err = e.KeepLease(ctx, start)
		case owed || start.Sub(lastFull) >= d.cfg.EngineResync:
			res, err = e.Reconcile(ctx, start)
			lastFull, planned = start, true
		default:
			var changed bool
			res, changed, err = e.KeepLease(ctx, start)
			if changed && res.Leader && err == nil {
				res, err = e.Reconcile(ctx, start)
				lastFull, planned = start, true
			}
		}
		d.cfg.Observer.EnginePass(planned, res, err, d.cfg.Now().Sub(start))
		if ctx.Err() != nil {
			return
		}
		now := d.cfg.Now()
		switch {
		case err != nil:
			failing.log(d.cfg.Logger, "engine: pass failed", err)
			failed, owed = true, true
		case failed:
			failing.recovered(d.cfg.Logger, "engine: passes work again")
			if gap := now.Sub(lastOK); gap > d.cfg.TTL/2 {
				hold = now.Add(d.cfg.TTL)
				d.cfg.Logger.Warn("engine: registry reachable again after a presence could lapse: planning waits a presence TTL for the machines to announce themselves",
					"unreachable", gap.Round(time.Millisecond), "ttl", d.cfg.TTL)
			}
			lastOK, failed = now, false
		default:
			lastOK = now
			if planned {
				owed = false
			}
		}
		if planned && res.Leader && err == nil {
			unplaceable = logEngine(d.cfg.Logger, res, unplaceable)
		}
		next := earliest(res.NextWake, lastFull.Add(d.cfg.EngineResync))
		if owed && !failed {
			if now.Before(hold) {
				next = earliest(next, hold)
			} else {
				next = now
			}
		}
		if d.cfg.DisableWatches {
			next = earliest(next, start.Add(d.cfg.Poll))
		}
		why, ok := d.wait(ctx, next, &regWake, &never, nil)
		if !ok {
			return
		}
		// A change in the registry (or, without watches, every wake-up) asks
		// for a full pass; the timer alone for a lease renewal.
		owed = owed || why == wokeRegistry || d.cfg.DisableWatches
	}
}

// placedOnAbsent lists the machines that have units placed on them but no
// presence, sorted.
func placedOnAbsent(ctx context.Context, reg core.Registry) ([]string, error) {
	ps, err := reg.Placements(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := reg.Machines(ctx)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, m := range ms {
		present[m.ID] = true
	}
	var absent []string
	for _, p := range ps {
		if !present[p.Machine] && !slices.Contains(absent, p.Machine) {
			absent = append(absent, p.Machine)
		}
	}
	slices.Sort(absent)
	return absent, nil
}
