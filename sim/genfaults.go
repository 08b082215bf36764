package sim

import (
	"fmt"
	"sort"
	"time"
)

// genFault is one kind of fault a generated scenario injects. inject schedules
// it on machine m at time at; a fault that lasts ends by end at the latest.
type genFault struct {
	name   string
	weight int
	inject func(g *generator, m *Machine, at, end time.Time)
}

// genFaults are the faults of generated scenarios, with their relative weights.
var genFaults = []genFault{
	{"crash", 3, (*generator).crash},
	{"restart-fleetd", 2, (*generator).restartFleetd},
	{"partition", 3, (*generator).partition},
	{"registry-down", 1, (*generator).registryDown},
	{"stall-engine", 2, (*generator).stallEngine},
	{"pause-engine-write", 2, (*generator).pauseEngineWrite},
	{"restart-systemd", 1, (*generator).restartSystemd},
	{"crash-unit", 3, (*generator).crashUnit},
	{"systemctl-stop", 2, (*generator).stopUnit},
	{"fail-starts", 1, (*generator).failStarts},
}

// scheduleFaults draws the faults of the fault phase, from now until end: their
// times as a Poisson process of the profile's rate, their kinds by weight, their
// machines uniformly. Choices that depend on the state at the time (which unit
// to kill, which engine leads) are drawn when the fault strikes.
func (g *generator) scheduleFaults(end time.Time) {
	if g.prof.every == 0 {
		return
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
			return
		}
		f := pickFault(g.rng.IntN(total))
		m := g.c.machines[g.rng.IntN(len(g.c.machines))]
		g.faults[f.name]++
		f.inject(g, m, at, end)
	}
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

// noteSkipped records a fault that could not strike (its machine was down, say) in the
// trace, where a reader of the run will look for it.
func (g *generator) noteSkipped(err error) {
	if err != nil {
		g.c.tracef("-", "fault skipped: %v", err)
	}
}

func (g *generator) crash(m *Machine, at, end time.Time) {
	back := g.lasting(at, end, 10*time.Second, 90*time.Second)
	g.c.At(at, fmt.Sprintf("fault: crash %s until %s", m.ID, back.Sub(Epoch)), func() { g.noteSkipped(g.c.CrashMachine(m.ID)) })
	g.c.At(back, "fault ends: return "+m.ID, func() { g.noteSkipped(g.c.ReturnMachine(m.ID)) })
}

func (g *generator) restartFleetd(m *Machine, at, _ time.Time) {
	g.c.At(at, "fault: restart fleetd on "+m.ID, func() { g.noteSkipped(g.c.RestartFleetd(m.ID)) })
}

func (g *generator) partition(m *Machine, at, end time.Time) {
	back := g.lasting(at, end, 5*time.Second, 60*time.Second)
	g.c.At(at, fmt.Sprintf("fault: partition %s until %s", m.ID, back.Sub(Epoch)), func() { g.noteSkipped(g.c.Partition(m.ID, true)) })
	g.c.At(back, "fault ends: reconnect "+m.ID, func() { g.noteSkipped(g.c.Partition(m.ID, false)) })
}

func (g *generator) registryDown(_ *Machine, at, end time.Time) {
	back := g.lasting(at, end, time.Second, 15*time.Second)
	g.c.At(at, fmt.Sprintf("fault: registry down until %s", back.Sub(Epoch)), func() { g.c.RegistryDown(true) })
	g.c.At(back, "fault ends: registry up", func() { g.c.RegistryDown(false) })
}

// stallEngine stalls the leading engine when there is one, else m's.
func (g *generator) stallEngine(m *Machine, at, end time.Time) {
	d := g.lasting(at, end, 5*time.Second, 30*time.Second).Sub(at)
	g.c.At(at, fmt.Sprintf("fault: stall the leading engine for %s", d), func() {
		id := g.c.leasing.current.Engine
		if id == "" {
			id = m.ID
		}
		g.noteSkipped(g.c.StallEngine(id, d))
	})
}

// pauseEngineWrite pauses the leading engine (else m's) in its next write.
func (g *generator) pauseEngineWrite(m *Machine, at, end time.Time) {
	d := g.lasting(at, end, 5*time.Second, 30*time.Second).Sub(at)
	g.c.At(at, fmt.Sprintf("fault: pause the leading engine's next write for %s", d), func() {
		id := g.c.leasing.current.Engine
		if id == "" || g.c.byID[id].engine == nil {
			id = m.ID
		}
		g.noteSkipped(g.c.PauseEngineWrite(id, d))
	})
}

func (g *generator) restartSystemd(m *Machine, at, _ time.Time) {
	g.c.At(at, "fault: restart systemd on "+m.ID, func() {
		if m.up {
			g.noteSkipped(g.c.RestartSystemd(m.ID))
		}
	})
}

func (g *generator) crashUnit(m *Machine, at, _ time.Time) {
	g.c.At(at, "fault: a unit crashes on "+m.ID, func() {
		if u := g.someUnit(m); u != "" {
			g.noteSkipped(g.c.CrashUnit(m.ID, u))
		}
	})
}

func (g *generator) stopUnit(m *Machine, at, _ time.Time) {
	g.c.At(at, "fault: systemctl stop of a unit on "+m.ID, func() {
		if u := g.someUnit(m); u != "" {
			g.noteSkipped(g.c.StopUnitBehindBack(m.ID, u))
		}
	})
}

func (g *generator) failStarts(m *Machine, at, end time.Time) {
	back := g.lasting(at, end, 5*time.Second, 30*time.Second)
	g.c.At(at, fmt.Sprintf("fault: start jobs fail on %s until %s", m.ID, back.Sub(Epoch)), func() {
		if m.up {
			g.noteSkipped(g.c.FailStarts(m.ID, true))
		}
	})
	g.c.At(back, "fault ends: start jobs succeed on "+m.ID, func() {
		if m.up {
			g.noteSkipped(g.c.FailStarts(m.ID, false))
		}
	})
}

// someUnit draws one of the units m's systemd knows, or "" if m is down or has
// none.
func (g *generator) someUnit(m *Machine) string {
	if !m.up {
		return ""
	}
	units, err := m.sd.Units(g.c.ctx)
	if err != nil {
		g.noteSkipped(err)
		return ""
	}
	if len(units) == 0 {
		return ""
	}
	names := make([]string, len(units))
	for i, u := range units {
		names[i] = u.Name
	}
	sort.Strings(names)
	return names[g.rng.IntN(len(names))]
}
