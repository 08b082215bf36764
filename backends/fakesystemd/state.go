package fakesystemd

import (
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// maxTransitions bounds the transitions applied by one call. Every transition
// moves virtual time forward or ends a restart loop (the start limit), so the
// bound is reached only after a long jump of the clock past a unit that keeps
// restarting; the remaining transitions then happen at the next calls.
const maxTransitions = 4096

// jobKind is the kind of job queued for a unit.
type jobKind uint8

const (
	noJob jobKind = iota
	startJob
	stopJob
)

// entry is one unit: its file in fleet's directory and systemd's view of it.
// A unit stays an entry after its file is removed until it has stopped.
type entry struct {
	name string

	// fleet's directory
	hasFile bool
	hash    core.Hash
	file    spec // parsed from the file on disk

	// systemd's view, as of the last Reload
	load   string
	loaded spec
	active string
	sub    string
	job    jobKind
	hung   bool        // the job never completes
	due    time.Time   // when the job completes or the auto-restart fires
	since  time.Time   // when the unit last entered its active sub-state
	starts []time.Time // recent starts, for the start limit
}

// eventKind is what happens to a unit at its next deadline.
type eventKind uint8

const (
	noEvent eventKind = iota
	jobDone
	autoRestart
	crashFault
)

func newEntry(name string) *entry {
	return &entry{name: name, load: core.LoadNotFound, active: core.ActiveInactive, sub: "dead"}
}

// listed reports whether Units shows the entry: its file is in fleet's directory.
func (e *entry) listed() bool { return e.hasFile }

// collectable reports whether systemd would forget the unit: no file, no job,
// nothing running and no failed state to keep.
func (e *entry) collectable() bool {
	return !e.hasFile && e.job == noJob && e.active == core.ActiveInactive
}

// setState changes the active and sub state, recording that something changed.
func (m *Manager) setState(e *entry, active, sub string) {
	if e.active != active || e.sub != sub {
		e.active, e.sub = active, sub
		m.dirty = true
	}
}

// pending returns the unit's next event and its time.
func (m *Manager) pending(e *entry) (time.Time, eventKind) {
	switch {
	case e.job != noJob && !e.hung:
		return e.due, jobDone
	case e.job == noJob && e.active == core.ActiveActivating && e.sub == "auto-restart":
		return e.due, autoRestart
	case e.job == noJob && e.active == core.ActiveActive && e.sub == subStatesOf(e.name).active:
		if at, ok := m.faults.CrashAt[e.name]; ok && !at.Before(e.since) {
			return at, crashFault
		}
	}
	return time.Time{}, noEvent
}

// next returns the unit with the earliest event, ties broken by name.
func (m *Manager) next() (*entry, time.Time, eventKind) {
	var (
		first *entry
		at    time.Time
		kind  eventKind
	)
	for _, e := range m.units {
		t, k := m.pending(e)
		if k != noEvent && (first == nil || t.Before(at)) {
			first, at, kind = e, t, k
		}
	}
	return first, at, kind
}

// advance applies, in time order, every transition due by now, then forgets
// the removed units that have stopped.
func (m *Manager) advance(now time.Time) {
	if now.After(m.now) {
		m.now = now
	}
	applied := 0
	for ; applied < maxTransitions; applied++ {
		e, at, kind := m.next()
		if e == nil || at.After(m.now) {
			break
		}
		switch kind {
		case jobDone:
			m.completeJob(e, at)
		case autoRestart:
			m.beginStart(e, at)
		case crashFault:
			m.exited(e, at, killed)
		}
	}
	if applied > 0 {
		m.collect()
	}
}

// beginStart queues a start job, or fails the unit when it is not loaded or
// has started too often (systemd's start limit).
func (m *Manager) beginStart(e *entry, at time.Time) {
	e.job, e.hung, e.due = noJob, false, time.Time{}
	if e.load != core.LoadLoaded || m.startLimitHit(e, at) {
		m.setState(e, core.ActiveFailed, "failed")
		return
	}
	m.setState(e, core.ActiveActivating, subStatesOf(e.name).starting)
	e.job = startJob
	e.hung = m.faults.Hang[e.name]
	e.due = at.Add(m.jobDuration)
}

// startLimitHit records a start at time at and reports whether it is one too many.
func (m *Manager) startLimitHit(e *entry, at time.Time) bool {
	burst, period := int(e.loaded.limitBurst), e.loaded.limitPeriod
	if burst <= 0 || period <= 0 {
		return false
	}
	recent := e.starts[:0]
	for _, t := range e.starts {
		if at.Sub(t) < period {
			recent = append(recent, t)
		}
	}
	e.starts = recent
	if len(e.starts) >= burst {
		return true
	}
	e.starts = append(e.starts, at)
	return false
}

// beginStop queues a stop job. Stopping an inactive or failed unit changes
// nothing (a failed unit stays failed until its state is reset); stopping a
// unit waiting to restart cancels the restart.
func (m *Manager) beginStop(e *entry, at time.Time) {
	switch {
	case e.active == core.ActiveInactive, e.active == core.ActiveFailed, e.job == stopJob:
		return
	case e.job == noJob && e.sub == "auto-restart":
		e.due = time.Time{}
		m.setState(e, core.ActiveInactive, "dead")
		return
	}
	m.setState(e, core.ActiveDeactivating, subStatesOf(e.name).stopping)
	e.job = stopJob
	e.hung = m.faults.Hang[e.name]
	e.due = at.Add(m.jobDuration)
}

// completeJob finishes the unit's job at time at.
func (m *Manager) completeJob(e *entry, at time.Time) {
	kind := e.job
	e.job, e.hung, e.due = noJob, false, time.Time{}
	if kind == stopJob {
		m.setState(e, core.ActiveInactive, "dead")
		return
	}
	switch {
	case m.faults.StartFails[e.name]:
		m.exited(e, at, failedExit)
	case e.loaded.program == exitsOK:
		m.exited(e, at, cleanExit)
	case e.loaded.program == exitsFail:
		m.exited(e, at, failedExit)
	default:
		e.since = at
		m.setState(e, core.ActiveActive, subStatesOf(e.name).active)
	}
}

// exited handles the end of the unit's main process at time at: the unit
// stays active (RemainAfterExit=), waits to restart (Restart=), or ends
// inactive or failed.
func (m *Manager) exited(e *entry, at time.Time, cause exitCause) {
	e.job, e.hung, e.due = noJob, false, time.Time{}
	switch {
	case cause == cleanExit && e.loaded.remain:
		m.setState(e, core.ActiveActive, "exited")
	case e.loaded.restartsAfter(cause):
		e.due = at.Add(max(e.loaded.restartSec, minRestartDelay))
		m.setState(e, core.ActiveActivating, "auto-restart")
	case cause == cleanExit:
		m.setState(e, core.ActiveInactive, "dead")
	default:
		m.setState(e, core.ActiveFailed, "failed")
	}
}

// crash kills the unit's main process, if it has one running or starting.
func (m *Manager) crash(e *entry, at time.Time) {
	running := e.job == noJob && e.active == core.ActiveActive && e.sub == subStatesOf(e.name).active
	starting := e.job == startJob
	if running || starting {
		m.exited(e, at, killed)
	}
}

// resetFailed clears the failed state and the start history (systemctl reset-failed).
func (m *Manager) resetFailed(e *entry) {
	e.starts = nil
	if e.active == core.ActiveFailed {
		m.setState(e, core.ActiveInactive, "dead")
	}
}
