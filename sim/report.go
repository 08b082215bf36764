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
	Seed uint64
	// Source is "gen" for a generated run, else the scenario file.
	Source  string
	Config  GenConfig // of a generated run
	Backend string
	// Stopped names the phase in which an invariant broke and the run ended;
	// empty if every phase ran.
	Stopped string
	// InitialConvergence is the virtual time from submitting the units to a
	// converged cluster; HealConvergence the same after healing the faults.
	InitialConvergence time.Duration
	HealConvergence    time.Duration
	UnitsPerMachine    Spread            // units running per live machine at the end
	Machines           []MachineLoad     // the live machines at the end, by ID
	Unplaceable        []UnplaceableUnit // units wanting to run that fit nowhere at the end, by name
	// Failovers are the units moved off machines that went away, from the
	// presence expiring to the leader's decision; FailoverList has each one.
	Failovers    Latency
	FailoverList []FailoverTimes
	// ExpiredToActive is from the presence expiring to the unit active on
	// another machine; GoneToActive from the machine going away (what an
	// operator feels). Failovers whose unit never became active are left out.
	ExpiredToActive Latency
	GoneToActive    Latency
	// Timeline is the run as the trace shows it, for the HTML page.
	Timeline   Timeline
	Faults     []FaultCount      // faults injected, by kind
	Invariants []InvariantResult // the seven invariants, in DESIGN.md order
	Work       Work
	Virtual    time.Duration // virtual time simulated
	Wall       time.Duration // wall time it took
	Speed      float64       // virtual seconds per wall second
	TraceHash  string
	// replay is what a generated run did, as scenario commands.
	replay []replayStep
}

// MachineLoad is how many units run on a live machine.
type MachineLoad struct {
	ID    string
	Units int
}

// UnplaceableUnit is a unit that wants to run but that no machine can take,
// with the engine's reason.
type UnplaceableUnit struct {
	Unit, Reason string
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
	r.fromCluster(c)
	for _, f := range genFaults {
		if n := faults[f.name]; n > 0 {
			r.Faults = append(r.Faults, FaultCount{Kind: f.name, N: n})
		}
	}
	r.Wall = wall
	if wall > 0 {
		r.Speed = r.Virtual.Seconds() / wall.Seconds()
	}
}

// ScenarioReport is the report of a scenario's cluster as it is now; Source is
// left for the caller to name the file.
func ScenarioReport(c *Cluster) Report {
	r := Report{Seed: c.cfg.Seed, Backend: c.backend.Name}
	r.fromCluster(c)
	return r
}

// fromCluster fills in what the cluster and its trace tell.
func (r *Report) fromCluster(c *Cluster) {
	if load, err := c.Load(); err == nil {
		r.UnitsPerMachine = spreadOf(load)
		for id, n := range load {
			r.Machines = append(r.Machines, MachineLoad{ID: id, Units: n})
		}
		sort.Slice(r.Machines, func(i, j int) bool { return r.Machines[i].ID < r.Machines[j].ID })
	}
	for u, why := range c.unplaceable {
		r.Unplaceable = append(r.Unplaceable, UnplaceableUnit{Unit: u, Reason: why})
	}
	sort.Slice(r.Unplaceable, func(i, j int) bool { return r.Unplaceable[i].Unit < r.Unplaceable[j].Unit })
	r.Failovers = latencyOf(c.Failovers())
	r.Timeline = c.Timeline()
	r.FailoverList = r.Timeline.Failovers
	var toActive, fromGone []time.Duration
	for _, f := range r.FailoverList {
		if f.Activated {
			toActive = append(toActive, f.Active-f.Expired)
			fromGone = append(fromGone, f.Active-f.Gone)
		}
	}
	r.ExpiredToActive, r.GoneToActive = latencyOfDurations(toActive), latencyOfDurations(fromGone)
	r.Invariants = invariantResults(c.Violations())
	r.Work = c.Work()
	r.Virtual = c.Elapsed()
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
	ds := make([]time.Duration, len(fs))
	for i, f := range fs {
		ds[i] = f.Latency
	}
	return latencyOfDurations(ds)
}

func latencyOfDurations(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return Latency{Count: len(ds), Median: ds[len(ds)/2], P99: ds[(len(ds)*99+99)/100-1], Max: ds[len(ds)-1]}
}

// String renders the report for people: the seed first, to replay the run.
func (r Report) String() string {
	var b strings.Builder
	cfg := r.Config
	fmt.Fprintf(&b, "seed %d\n", r.Seed)
	generated := r.Source == "gen"
	if generated {
		fmt.Fprintf(&b, "cluster: %d machines (%d engines), %d units, %s faults over %s, backend %s\n",
			cfg.Machines, cfg.Engines, cfg.Units, cfg.Faults, cfg.Duration, r.Backend)
		fmt.Fprintf(&b, "convergence: initial %s, after healing %s\n", r.InitialConvergence, r.HealConvergence)
	} else {
		fmt.Fprintf(&b, "scenario: %s, backend %s\n", r.Source, r.Backend)
	}
	r.writePlacement(&b)
	r.writeFailovers(&b)
	if generated {
		b.WriteString("faults:")
		if len(r.Faults) == 0 {
			b.WriteString(" none")
		}
		for _, c := range r.Faults {
			fmt.Fprintf(&b, " %s=%d", c.Kind, c.N)
		}
		b.WriteString("\n")
	}
	b.WriteString("invariants:\n")
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
	if !generated {
		fmt.Fprintf(&b, "time: %s virtual\n", r.Virtual)
	}
	speed := fmt.Sprintf("%.0f", r.Speed)
	if r.Speed < 10 {
		speed = fmt.Sprintf("%.2f", r.Speed)
	}
	if generated {
		fmt.Fprintf(&b, "time: %s virtual in %s wall, %s virtual s per wall s\n", r.Virtual, r.Wall.Round(time.Millisecond), speed)
	}
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

// The text report lists the machines one by one up to this many, and at most
// this many unplaceable units (JSON has them all).
const (
	textMachines    = 20
	textUnplaceable = 100
)

// writePlacement writes the units per machine and the unplaceable units.
func (r Report) writePlacement(b *strings.Builder) {
	u := r.UnitsPerMachine
	fmt.Fprintf(b, "units per machine: min %d, median %d, max %d (fleet does not rebalance: placed units stay where they are)\n", u.Min, u.Median, u.Max)
	if n := len(r.Machines); n > 0 && n <= textMachines {
		b.WriteString(" ")
		for _, m := range r.Machines {
			fmt.Fprintf(b, " %s=%d", m.ID, m.Units)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "unplaceable: %d\n", len(r.Unplaceable))
	for i, p := range r.Unplaceable {
		if i == textUnplaceable {
			fmt.Fprintf(b, "  ... and %d more (--output json lists them all)\n", len(r.Unplaceable)-i)
			break
		}
		fmt.Fprintf(b, "  %s: %s\n", p.Unit, p.Reason)
	}
}

// writeFailovers writes the failover latencies, as the cluster sees them (from
// the presence expiring) and as an operator does (from the machine going away).
func (r Report) writeFailovers(b *strings.Builder) {
	active := r.ExpiredToActive.Count
	fmt.Fprintf(b, "failovers: %d, %d of them active on their new machine\n", len(r.FailoverList), active)
	if active == 0 {
		return
	}
	for _, l := range []struct {
		what string
		l    Latency
	}{{"presence expired", r.ExpiredToActive}, {"machine gone", r.GoneToActive}} {
		fmt.Fprintf(b, "  %-16s -> active elsewhere: median %s, p99 %s, max %s\n", l.what,
			l.l.Median.Round(time.Millisecond), l.l.P99.Round(time.Millisecond), l.l.Max.Round(time.Millisecond))
	}
}
