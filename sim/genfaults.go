package sim

import (
	"time"
)

// genFault is one kind of fault a generated scenario injects, with its
// relative weight.
type genFault struct {
	name   string
	weight int
}

// genFaults are the faults of generated scenarios, with their relative weights.
var genFaults = []genFault{
	{"crash", 3},
	{"restart-fleetd", 2},
	{"partition", 3},
	{"registry-down", 1},
	{"stall-engine", 2},
	{"pause-engine-write", 2},
	{"restart-systemd", 1},
	{"crash-unit", 3},
	{"systemctl-stop", 2},
	{"fail-starts", 1},
}

// How long the lasting faults last, at least and at most.
var faultLengths = map[string][2]time.Duration{
	"crash":              {10 * time.Second, 90 * time.Second},
	"partition":          {5 * time.Second, 60 * time.Second},
	"registry-down":      {time.Second, 15 * time.Second},
	"stall-engine":       {5 * time.Second, 30 * time.Second},
	"pause-engine-write": {5 * time.Second, 30 * time.Second},
	"fail-starts":        {5 * time.Second, 30 * time.Second},
}

// scheduleFaults draws the faults of the fault phase, from now until end: their
// times as a Poisson process of the profile's rate, their kinds by weight, their
// machines uniformly. Choices that depend on the state at the time (which unit
// to kill, which engine leads) are made when the fault strikes.
func (g *generator) scheduleFaults(end time.Time) error {
	if g.prof.every == 0 {
		return nil
	}
	total := 0
	for _, f := range genFaults {
		total += f.weight
	}
	at := g.c.Now()
	limit := 10*int(g.cfg.Duration/g.prof.every) + 10
	for range limit {
		at = at.Add(time.Duration(g.rng.ExpFloat64() * float64(g.prof.every)))
		if !at.Before(end) {
			return nil
		}
		kind := pickFault(g.rng.IntN(total)).name
		m := g.c.machines[g.rng.IntN(len(g.c.machines))]
		f := &plannedFault{kind: kind, machine: m.ID, at: at}
		k := faultKinds[kind]
		if k.cluster {
			f.machine = ""
		}
		if r, ok := faultLengths[kind]; ok {
			until := g.lasting(at, end, r[0], r[1])
			if k.pauses {
				f.d = until.Sub(at)
			} else {
				f.until = until
			}
		}
		if k.unit {
			f.draw = func(names []string) string { return names[g.rng.IntN(len(names))] }
		}
		g.faults[kind]++
		if err := g.c.scheduleFault(f); err != nil {
			return err
		}
		g.steps = append(g.steps, replayStep{fault: f})
	}
	return nil
}

// pickFault returns the fault whose weight band contains r.
func pickFault(r int) genFault {
	for _, f := range genFaults {
		if r < f.weight {
			return f
		}
		r -= f.weight
	}
	return genFaults[len(genFaults)-1]
}

// lasting draws how long a fault lasts, between lo and hi, ending by end.
func (g *generator) lasting(at, end time.Time, lo, hi time.Duration) time.Time {
	d := lo + time.Duration(g.rng.Int64N(int64(hi-lo)))
	if t := at.Add(d); t.Before(end) {
		return t
	}
	return end
}
