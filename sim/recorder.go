package sim

import (
	"strings"
	"time"
)

// The recorder keeps at most this many bars and fault marks; beyond, it counts
// what it dropped. The failovers are always all kept.
const (
	maxRecordedBars   = 50_000
	maxRecordedFaults = 10_000
)

// Bar is a unit running on a machine, over virtual time since the start.
type Bar struct {
	Unit, Machine string
	Start, End    time.Duration
	Running       bool // still running at the end of the run; End is then the end of the run
}

// FaultMark is a fault the trace shows: on a machine, or on the whole cluster
// (Machine empty, a registry outage).
type FaultMark struct {
	At      time.Duration
	Machine string
	What    string
}

// FailoverTimes is one unit moved off a machine that went away, with the
// moments an operator cares about, in virtual time since the start.
type FailoverTimes struct {
	Unit, From, To string
	// Gone is when the machine went away: its crash, partition or the registry
	// outage that stopped its heartbeats, or else its last heartbeat.
	Gone time.Duration
	// Expired is when its presence expired; Decided when a leader moved the unit.
	Expired, Decided time.Duration
	// Active is when the unit was active on To: its start there plus a systemd
	// job; Activated is false if it was never started there.
	Active    time.Duration
	Activated bool
}

// recorder builds the timeline of a run from its trace lines: machines joining,
// units started and stopped on each machine, faults, failovers. It reads the
// trace, so it sees what a reader of the trace sees and needs no hook in the
// driver.
type recorder struct {
	ttl, job  time.Duration
	machines  []string
	known     map[string]bool
	open      map[[2]string]int // unit and machine to its running bar
	bars      []Bar
	faults    []FaultMark
	failovers []FailoverTimes
	pending   map[string]int             // unit to its failover not yet active
	gone      map[string][]time.Duration // crashes and partitions, by machine
	down      []time.Duration            // registry outages
	expired   map[string]time.Duration
	dropped   int // bars and marks not kept
}

func newRecorder(ttl, job time.Duration) *recorder {
	return &recorder{
		ttl: ttl, job: job,
		known: map[string]bool{}, open: map[[2]string]int{}, pending: map[string]int{},
		gone: map[string][]time.Duration{}, expired: map[string]time.Duration{},
	}
}

// line takes one trace line: its time, actor and text.
func (r *recorder) line(at time.Duration, actor, msg string) {
	if actor == "-" {
		switch msg {
		case "registry down=true":
			r.down = append(r.down, at)
			r.mark(at, "", "registry down")
		case "registry down=false":
			r.mark(at, "", "registry up")
		}
		return
	}
	if actor == "client" {
		return
	}
	if rest, ok := strings.CutPrefix(msg, "agent: "); ok {
		r.agent(at, actor, rest)
		return
	}
	if rest, ok := strings.CutPrefix(msg, "engine: reschedule "); ok {
		r.reschedule(at, rest)
		return
	}
	switch {
	case strings.HasPrefix(msg, "machine joins"):
		if !r.known[actor] {
			r.known[actor] = true
			r.machines = append(r.machines, actor)
		}
	case msg == "presence expired":
		r.expired[actor] = at
	case msg == "machine crashes":
		r.gone[actor] = append(r.gone[actor], at)
		r.stopAll(at, actor)
		r.mark(at, actor, "crash")
	case msg == "systemd restarts":
		r.stopAll(at, actor)
		r.mark(at, actor, msg)
	case msg == "partitioned=true":
		r.gone[actor] = append(r.gone[actor], at)
		r.mark(at, actor, "partition")
	case msg == "partitioned=false":
		r.mark(at, actor, "reconnect")
	case strings.HasPrefix(msg, "unit crashes: "):
		r.stop(at, actor, strings.TrimPrefix(msg, "unit crashes: "))
		r.mark(at, actor, msg)
	case strings.HasPrefix(msg, "systemctl stop "):
		r.stop(at, actor, strings.TrimPrefix(msg, "systemctl stop "))
		r.mark(at, actor, msg)
	case msg == "machine returns", msg == "fleetd restarts", msg == "start jobs fail=true",
		strings.HasPrefix(msg, "engine stalls for "), strings.HasPrefix(msg, "engine will pause "):
		r.mark(at, actor, msg)
	}
}

// agent reads an agent's task line: a start opens a bar, a stop or removal
// (or a failed start) closes it.
func (r *recorder) agent(at time.Duration, m, task string) {
	kind, rest, _ := strings.Cut(task, " ")
	if kind == "failed" {
		kind, rest, _ = strings.Cut(rest, " ")
		if kind == "start" {
			unit, _, _ := strings.Cut(rest, " ")
			r.stop(at, m, unit)
		}
		return
	}
	unit, _, _ := strings.Cut(rest, " ")
	switch kind {
	case "start":
		r.start(at, m, unit)
	case "stop", "remove":
		r.stop(at, m, unit)
	}
}

func (r *recorder) start(at time.Duration, m, unit string) {
	if i, ok := r.pending[unit]; ok && r.failovers[i].To == m {
		r.failovers[i].Active, r.failovers[i].Activated = at+r.job, true
		delete(r.pending, unit)
	}
	k := [2]string{unit, m}
	if _, ok := r.open[k]; ok {
		return
	}
	if len(r.bars) >= maxRecordedBars {
		r.dropped++
		return
	}
	r.open[k] = len(r.bars)
	r.bars = append(r.bars, Bar{Unit: unit, Machine: m, Start: at + r.job, Running: true})
}

func (r *recorder) stop(at time.Duration, m, unit string) {
	k := [2]string{unit, m}
	i, ok := r.open[k]
	if !ok {
		return
	}
	delete(r.open, k)
	b := &r.bars[i]
	b.End, b.Running = max(at, b.Start), false
}

func (r *recorder) stopAll(at time.Duration, m string) {
	for k := range r.open {
		if k[1] == m {
			r.stop(at, m, k[0])
		}
	}
}

func (r *recorder) mark(at time.Duration, m, what string) {
	if len(r.faults) >= maxRecordedFaults {
		r.dropped++
		return
	}
	r.faults = append(r.faults, FaultMark{At: at, Machine: m, What: what})
}

// reschedule reads "U from A to B (reason)"; a unit moved because A went away
// is a failover.
func (r *recorder) reschedule(at time.Duration, rest string) {
	unit, rest, ok1 := strings.Cut(rest, " from ")
	from, rest, ok2 := strings.Cut(rest, " to ")
	to, reason, ok3 := strings.Cut(rest, " (")
	if !ok1 || !ok2 || !ok3 || reason != "machine "+from+" went away)" {
		return
	}
	exp, ok := r.expired[from]
	if !ok {
		exp = at
	}
	f := FailoverTimes{Unit: unit, From: from, To: to, Gone: max(exp-r.ttl, 0), Expired: exp, Decided: at}
	// The machine went away with the first thing after its last heartbeat that
	// stopped its heartbeats.
	first := exp
	for _, gs := range [][]time.Duration{r.gone[from], r.down} {
		for _, g := range gs {
			if g > f.Gone && g <= exp {
				first = min(first, g)
				break
			}
		}
	}
	if first < exp {
		f.Gone = first
	}
	r.pending[unit] = len(r.failovers)
	r.failovers = append(r.failovers, f)
}

// timeline is what the recorder saw, up to end.
func (r *recorder) timeline(end time.Duration) Timeline {
	bars := make([]Bar, len(r.bars))
	for i, b := range r.bars {
		if b.Running {
			b.End = max(end, b.Start)
		}
		bars[i] = b
	}
	return Timeline{
		End: end, Machines: append([]string(nil), r.machines...), Bars: bars,
		Faults: append([]FaultMark(nil), r.faults...), Failovers: append([]FailoverTimes(nil), r.failovers...),
		Dropped: r.dropped,
	}
}

// Timeline is what happened on each machine over a run, for pictures: the
// machines in the order they joined, the units that ran on them, the faults and
// the failovers. Dropped counts bars and marks not kept (beyond 50,000 bars or
// 10,000 marks).
type Timeline struct {
	End       time.Duration
	Machines  []string
	Bars      []Bar
	Faults    []FaultMark
	Failovers []FailoverTimes
	Dropped   int
}
