package driver

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// wakeSource says why a loop woke.
type wakeSource int

const (
	wokeTimer wakeSource = iota
	wokeRegistry
	wokeUnits
	wokeKick
)

// wait blocks until the time next, a value on one of the channels, or the end
// of ctx (ok false). After a wake-up it waits Coalesce more, so that a burst of
// changes costs one pass, then drains the channels: the pass about to run
// reads everything that happened until now. A channel found closed is set to
// nil, so that it never wakes the loop again.
func (d *Driver) wait(ctx context.Context, next time.Time, reg, units *<-chan struct{}, kicked chan struct{}) (wakeSource, bool) {
	timer := time.NewTimer(max(0, time.Until(next)))
	defer timer.Stop()
	why := wokeTimer
	select {
	case <-ctx.Done():
		return why, false
	case <-timer.C:
	case _, ok := <-*reg:
		why = wokeRegistry
		if !ok {
			*reg = nil
		}
	case _, ok := <-*units:
		why = wokeUnits
		if !ok {
			*units = nil
		}
	case <-kicked:
		why = wokeKick
	}
	if why != wokeTimer {
		select {
		case <-ctx.Done():
			return why, false
		case <-time.After(d.cfg.Coalesce):
		}
	}
	drain(reg)
	drain(units)
	return why, true
}

// drain takes a pending value off *ch without blocking.
func drain(ch *<-chan struct{}) {
	select {
	case _, ok := <-*ch:
		if !ok {
			*ch = nil
		}
	default:
	}
}

func earliest(t time.Time, others ...time.Time) time.Time {
	for _, o := range others {
		if !o.IsZero() && (t.IsZero() || o.Before(t)) {
			t = o
		}
	}
	return t
}

func sameMachine(a, b core.MachineState) bool {
	return a.ID == b.ID && a.PublicIP == b.PublicIP && a.Version == b.Version &&
		a.Capabilities == b.Capabilities && maps.Equal(a.Metadata, b.Metadata)
}

// errorLog logs a loop's failure once per distinct error, and its recovery,
// so that a registry outage does not flood the log.
type errorLog struct {
	last string
}

func (l *errorLog) log(log *slog.Logger, msg string, err error) {
	if s := err.Error(); s != l.last {
		l.last = s
		log.Warn(msg, "err", err)
		return
	}
	log.Debug(msg+" (again)", "err", err)
}

func (l *errorLog) recovered(log *slog.Logger, msg string) {
	if l.last != "" {
		l.last = ""
		log.Info(msg)
	}
}

// logEngine logs a leader's decisions, and the units that became or stopped
// being unplaceable since the last pass; it returns the current set.
func logEngine(log *slog.Logger, res core.EngineResult, before map[string]string) map[string]string {
	for _, dec := range res.Decisions {
		log.Info("engine: " + dec.String())
	}
	now := make(map[string]string, len(res.Unplaceable))
	for _, u := range res.Unplaceable {
		now[u.Unit] = u.Reason
		if before[u.Unit] != u.Reason {
			log.Warn("engine: "+u.String(), "unit", u.Unit)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(before)) {
		if _, still := now[n]; !still {
			log.Info("engine: " + n + " is no longer unplaceable")
		}
	}
	return now
}
