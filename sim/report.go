package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Report is what a generated scenario did, for people to read and for tools to
// check. Every field but Wall and Speed is the same for the same config and seed.
type Report struct {
	Seed    uint64
	Config  GenConfig
	Backend string
	// Stopped names the phase in which an invariant broke and the run ended;
	// empty if every phase ran.
	Stopped string
	// InitialConvergence is the virtual time from submitting the units to a
	// converged cluster; HealConvergence the same after healing the faults.
	InitialConvergence time.Duration
	HealConvergence    time.Duration
	UnitsPerMachine    Spread            // units running per live machine at the end
	Unplaceable        int               // units wanting to run that fit nowhere at the end
	Failovers          Latency           // units moved off machines that went away
	Faults             []FaultCount      // faults injected, by kind
	Invariants         []InvariantResult // the seven invariants, in DESIGN.md order
	Work               Work
	Virtual            time.Duration // virtual time simulated
	Wall               time.Duration // wall time it took
	Speed              float64       // virtual seconds per wall second
	TraceHash          string
}

// Spread summarizes a distribution of counts.
type Spread struct {
	Min, Median, Max int
}

// Latency summarizes durations: how many, and their median, 99th percentile and
// maximum.
type Latency struct {
	Count            int
	Median, P99, Max time.Duration
}

// FaultCount is how many faults of one kind a run injected.
type FaultCount struct {
	Kind string
	N    int
}

// InvariantResult is one invariant's outcome: held, or the first violation.
type InvariantResult struct {
	Invariant string
	Held      bool
	First     Violation // the first violation, if it did not hold
}

// invariantOrder lists the invariants as DESIGN.md numbers them.
var invariantOrder = []string{InvLeasing, InvPlacement, InvConstraints, InvSingle, InvFailover, InvConvergence, InvNothingLost}

// OK reports whether every invariant held.
func (r Report) OK() bool {
	for _, inv := range r.Invariants {
		if !inv.Held {
			return false
		}
	}
	return true
}

// finish fills in what the cluster tells at the end of the run.
func (r *Report) finish(c *Cluster, faults map[string]int, wall time.Duration) {
	if load, err := c.Load(); err == nil {
		r.UnitsPerMachine = spreadOf(load)
	}
	r.Unplaceable = len(c.unplaceable)
	r.Failovers = latencyOf(c.Failovers())
	for _, f := range genFaults {
		if n := faults[f.name]; n > 0 {
			r.Faults = append(r.Faults, FaultCount{Kind: f.name, N: n})
		}
	}
	r.Invariants = invariantResults(c.Violations())
	r.Work = c.Work()
	r.Virtual = c.Elapsed()
	r.Wall = wall
	if wall > 0 {
		r.Speed = r.Virtual.Seconds() / wall.Seconds()
	}
	r.TraceHash = c.TraceHash()
}

func invariantResults(vs []Violation) []InvariantResult {
	out := make([]InvariantResult, len(invariantOrder))
	for i, inv := range invariantOrder {
		out[i] = InvariantResult{Invariant: inv, Held: true}
		for _, v := range vs {
			if v.Invariant == inv {
				out[i] = InvariantResult{Invariant: inv, First: v}
				break
			}
		}
	}
	return out
}

func spreadOf(load map[string]int) Spread {
	if len(load) == 0 {
		return Spread{}
	}
	ns := make([]int, 0, len(load))
	for _, n := range load {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	return Spread{Min: ns[0], Median: ns[len(ns)/2], Max: ns[len(ns)-1]}
}

func latencyOf(fs []Failover) Latency {
	if len(fs) == 0 {
		return Latency{}
	}
	ds := make([]time.Duration, len(fs))
	for i, f := range fs {
		ds[i] = f.Latency
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return Latency{Count: len(ds), Median: ds[len(ds)/2], P99: ds[(len(ds)*99+99)/100-1], Max: ds[len(ds)-1]}
}

// String renders the report for people: the seed first, to replay the run.
func (r Report) String() string {
	var b strings.Builder
	cfg := r.Config
	fmt.Fprintf(&b, "seed %d\n", r.Seed)
	fmt.Fprintf(&b, "cluster: %d machines (%d engines), %d units, %s faults over %s, backend %s\n",
		cfg.Machines, cfg.Engines, cfg.Units, cfg.Faults, cfg.Duration, r.Backend)
	fmt.Fprintf(&b, "convergence: initial %s, after healing %s\n", r.InitialConvergence, r.HealConvergence)
	u := r.UnitsPerMachine
	fmt.Fprintf(&b, "units per machine: min %d, median %d, max %d; unplaceable %d\n", u.Min, u.Median, u.Max, r.Unplaceable)
	f := r.Failovers
	fmt.Fprintf(&b, "failovers: %d, latency median %s, p99 %s, max %s\n", f.Count, f.Median, f.P99, f.Max)
	b.WriteString("faults:")
	if len(r.Faults) == 0 {
		b.WriteString(" none")
	}
	for _, c := range r.Faults {
		fmt.Fprintf(&b, " %s=%d", c.Kind, c.N)
	}
	b.WriteString("\ninvariants:\n")
	for _, inv := range r.Invariants {
		if inv.Held {
			fmt.Fprintf(&b, "  %-17s held\n", inv.Invariant)
			continue
		}
		fmt.Fprintf(&b, "  %-17s BROKEN at %s: %s\n", inv.Invariant, inv.First.At, inv.First.Detail)
	}
	w := r.Work
	fmt.Fprintf(&b, "work: %d events, %d engine passes, %d agent passes, %d tasks, %d registry calls, %d decisions\n",
		w.Events, w.EnginePasses, w.AgentPasses, w.Tasks, w.RegistryCalls, w.Decisions)
	speed := fmt.Sprintf("%.0f", r.Speed)
	if r.Speed < 10 {
		speed = fmt.Sprintf("%.2f", r.Speed)
	}
	fmt.Fprintf(&b, "time: %s virtual in %s wall, %s virtual s per wall s\n", r.Virtual, r.Wall.Round(time.Millisecond), speed)
	fmt.Fprintf(&b, "trace: sha256 %s\n", r.TraceHash)
	switch {
	case r.Stopped != "":
		fmt.Fprintf(&b, "result: FAILED, stopped during %s\n", r.Stopped)
	case !r.OK():
		b.WriteString("result: FAILED\n")
	default:
		b.WriteString("result: ok\n")
	}
	return b.String()
}
