package sim

import "time"

// JSONReport is the report in the stable form `fleetsim --output json` prints:
// fields are only ever added. Durations are in seconds of virtual time, except
// wall_seconds; times of events are seconds since the start of the run.
type JSONReport struct {
	Seed    uint64 `json:"seed"`
	Source  string `json:"source"` // "gen", or the scenario file
	Backend string `json:"backend"`
	// Config is the generated cluster's configuration (gen only).
	Config *JSONGenConfig `json:"config,omitempty"`
	Result string         `json:"result"` // "ok" or "failed"
	// Stopped names the phase of a generated run in which an invariant broke.
	Stopped string `json:"stopped,omitempty"`
	// Convergence is the time to converge of a generated run.
	Convergence     *JSONConvergence `json:"convergence,omitempty"`
	UnitsPerMachine JSONSpread       `json:"units_per_machine"`
	// Rebalances is always false: fleet never moves a placed unit to even out
	// the load, so a machine that joins or returns stays empty until new units
	// come.
	Rebalances  bool              `json:"rebalances"`
	Machines    []JSONMachine     `json:"machines"`
	Unplaceable []JSONUnplaceable `json:"unplaceable"`
	Failovers   JSONFailovers     `json:"failovers"`
	// Faults counts the faults a generated run injected, by kind.
	Faults         map[string]int  `json:"faults"`
	Invariants     []JSONInvariant `json:"invariants"`
	Work           JSONWork        `json:"work"`
	VirtualSeconds float64         `json:"virtual_seconds"`
	WallSeconds    float64         `json:"wall_seconds"`
	TraceSHA256    string          `json:"trace_sha256"`
}

// JSONGenConfig is the configuration of a generated run.
type JSONGenConfig struct {
	Machines        int     `json:"machines"`
	Engines         int     `json:"engines"`
	Units           int     `json:"units"`
	Faults          string  `json:"faults"`
	DurationSeconds float64 `json:"duration_seconds"`
}

// JSONConvergence is the time a generated run took to converge, at first and
// after healing its faults.
type JSONConvergence struct {
	InitialSeconds float64 `json:"initial_seconds"`
	HealSeconds    float64 `json:"heal_seconds"`
}

// JSONSpread is the least, median and most units on a live machine.
type JSONSpread struct {
	Min    int `json:"min"`
	Median int `json:"median"`
	Max    int `json:"max"`
}

// JSONMachine is a live machine at the end and the units it runs.
type JSONMachine struct {
	ID    string `json:"id"`
	Units int    `json:"units"`
}

// JSONUnplaceable is a unit that fits nowhere, with the engine's reason.
type JSONUnplaceable struct {
	Unit   string `json:"unit"`
	Reason string `json:"reason"`
}

// JSONFailovers are the units moved off machines that went away, with their
// latencies: from the presence expiring to the leader's decision and to the
// unit active elsewhere, and from the machine going away to the unit active
// elsewhere (what an operator feels).
type JSONFailovers struct {
	Count            int            `json:"count"`
	ActiveElsewhere  int            `json:"active_elsewhere"`
	ExpiredToDecided JSONLatency    `json:"expired_to_decided"`
	ExpiredToActive  JSONLatency    `json:"expired_to_active"`
	GoneToActive     JSONLatency    `json:"gone_to_active"`
	Units            []JSONFailover `json:"units"`
}

// JSONLatency summarizes latencies in seconds.
type JSONLatency struct {
	Count         int     `json:"count"`
	MedianSeconds float64 `json:"median_seconds"`
	P99Seconds    float64 `json:"p99_seconds"`
	MaxSeconds    float64 `json:"max_seconds"`
}

// JSONFailover is one failover, its moments in seconds since the start;
// active_at is null if the unit never became active on the new machine.
type JSONFailover struct {
	Unit      string   `json:"unit"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	GoneAt    float64  `json:"gone_at"`
	ExpiredAt float64  `json:"expired_at"`
	DecidedAt float64  `json:"decided_at"`
	ActiveAt  *float64 `json:"active_at"`
}

// JSONInvariant is one invariant: held, or when and how it first broke.
type JSONInvariant struct {
	Name   string `json:"name"`
	Held   bool   `json:"held"`
	At     string `json:"at,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// JSONWork counts what the simulation did.
type JSONWork struct {
	Events        int `json:"events"`
	EnginePasses  int `json:"engine_passes"`
	AgentPasses   int `json:"agent_passes"`
	Tasks         int `json:"tasks"`
	RegistryCalls int `json:"registry_calls"`
	Decisions     int `json:"decisions"`
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func jsonLatency(l Latency) JSONLatency {
	return JSONLatency{Count: l.Count, MedianSeconds: seconds(l.Median), P99Seconds: seconds(l.P99), MaxSeconds: seconds(l.Max)}
}

// JSON returns the report in its stable JSON form.
func (r Report) JSON() JSONReport {
	j := JSONReport{
		Seed: r.Seed, Source: r.Source, Backend: r.Backend, Result: "ok", Stopped: r.Stopped,
		UnitsPerMachine: JSONSpread(r.UnitsPerMachine),
		Machines:        []JSONMachine{}, Unplaceable: []JSONUnplaceable{}, Faults: map[string]int{},
		Work:           JSONWork(r.Work),
		VirtualSeconds: seconds(r.Virtual), WallSeconds: seconds(r.Wall), TraceSHA256: r.TraceHash,
	}
	if !r.OK() || r.Stopped != "" {
		j.Result = "failed"
	}
	if r.Source == "gen" {
		c := r.Config
		j.Config = &JSONGenConfig{Machines: c.Machines, Engines: c.Engines, Units: c.Units, Faults: c.Faults, DurationSeconds: seconds(c.Duration)}
		j.Convergence = &JSONConvergence{InitialSeconds: seconds(r.InitialConvergence), HealSeconds: seconds(r.HealConvergence)}
	}
	for _, m := range r.Machines {
		j.Machines = append(j.Machines, JSONMachine{ID: m.ID, Units: m.Units})
	}
	for _, u := range r.Unplaceable {
		j.Unplaceable = append(j.Unplaceable, JSONUnplaceable{Unit: u.Unit, Reason: u.Reason})
	}
	j.Failovers = JSONFailovers{
		Count: len(r.FailoverList), ActiveElsewhere: r.ExpiredToActive.Count,
		ExpiredToDecided: jsonLatency(r.Failovers), ExpiredToActive: jsonLatency(r.ExpiredToActive),
		GoneToActive: jsonLatency(r.GoneToActive), Units: []JSONFailover{},
	}
	for _, f := range r.FailoverList {
		jf := JSONFailover{Unit: f.Unit, From: f.From, To: f.To, GoneAt: seconds(f.Gone), ExpiredAt: seconds(f.Expired), DecidedAt: seconds(f.Decided)}
		if f.Activated {
			a := seconds(f.Active)
			jf.ActiveAt = &a
		}
		j.Failovers.Units = append(j.Failovers.Units, jf)
	}
	for _, f := range r.Faults {
		j.Faults[f.Kind] = f.N
	}
	for _, inv := range r.Invariants {
		ji := JSONInvariant{Name: inv.Invariant, Held: inv.Held}
		if !inv.Held {
			ji.At, ji.Detail = inv.First.At, inv.First.Detail
		}
		j.Invariants = append(j.Invariants, ji)
	}
	return j
}
