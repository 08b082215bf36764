package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// plannedFault is one fault of a generated run, as drawn: its kind, machine,
// time and length. A generated run schedules it; the scenario command `at`
// schedules it again from its words, the same way, so that a scenario written
// by `fleetsim gen --emit-scenario` replays the run exactly.
type plannedFault struct {
	kind    string
	machine string        // empty for registry-down
	at      time.Time     // when it strikes
	until   time.Time     // when a lasting fault ends: crash, partition, registry-down, fail-starts
	d       time.Duration // how long the engine stalls or pauses: stall-engine, pause-engine-write
	// unit is the unit a crash-unit or systemctl-stop struck ("" for none);
	// draw, in a generated run, draws it among the machine's units when the
	// fault strikes.
	unit string
	draw func(names []string) string
}

// faultKinds are the kinds of planned faults, and whether each lasts until a
// time (until=) or for a duration (for=), or strikes a unit (unit=).
var faultKinds = map[string]struct{ lasts, pauses, unit, cluster bool }{
	"crash":              {lasts: true},
	"restart-fleetd":     {},
	"partition":          {lasts: true},
	"registry-down":      {lasts: true, cluster: true},
	"stall-engine":       {pauses: true},
	"pause-engine-write": {pauses: true},
	"restart-systemd":    {},
	"crash-unit":         {unit: true},
	"systemctl-stop":     {unit: true},
	"fail-starts":        {lasts: true},
}

// words renders f as the arguments of the scenario command `at`.
func (f *plannedFault) words() []string {
	w := []string{"at", f.at.Sub(Epoch).String(), f.kind}
	if f.machine != "" {
		w = append(w, f.machine)
	}
	k := faultKinds[f.kind]
	switch {
	case k.lasts:
		w = append(w, "until="+f.until.Sub(Epoch).String())
	case k.pauses:
		w = append(w, "for="+f.d.String())
	case k.unit && f.unit != "":
		w = append(w, "unit="+f.unit)
	}
	return w
}

// parsePlannedFault reads the arguments of `at TIME KIND [MACHINE] [until=TIME]
// [for=D] [unit=NAME]`.
func parsePlannedFault(args []string) (*plannedFault, error) {
	const usage = "at TIME KIND [MACHINE] [until=TIME] [for=DURATION] [unit=NAME]"
	kv, pos := splitArgs(args)
	if len(pos) < 2 {
		return nil, fmt.Errorf("usage: %s", usage)
	}
	at, err := parseOffset("time", pos[0])
	if err != nil {
		return nil, err
	}
	f := &plannedFault{kind: pos[1], at: at}
	k, ok := faultKinds[f.kind]
	if !ok {
		kinds := make([]string, 0, len(faultKinds))
		for n := range faultKinds {
			kinds = append(kinds, n)
		}
		sort.Strings(kinds)
		return nil, fmt.Errorf("unknown fault %q, want one of %s", f.kind, strings.Join(kinds, ", "))
	}
	want := 3
	if k.cluster {
		want = 2
	}
	if len(pos) != want {
		return nil, fmt.Errorf("%s: want %d words before the options, got %d (usage: %s)", f.kind, want, len(pos), usage)
	}
	if !k.cluster {
		f.machine = pos[2]
	}
	for key, v := range kv {
		switch {
		case key == "until" && k.lasts:
			if f.until, err = parseOffset("until", v); err != nil {
				return nil, err
			}
			if f.until.Before(f.at) {
				return nil, fmt.Errorf("until=%s is before the fault's time %s", v, pos[0])
			}
		case key == "for" && k.pauses:
			if f.d, err = time.ParseDuration(v); err != nil || f.d <= 0 {
				return nil, fmt.Errorf("for=%s: want a positive duration", v)
			}
		case key == "unit" && k.unit:
			f.unit = v
		default:
			return nil, fmt.Errorf("%s takes no option %q", f.kind, key)
		}
	}
	if (k.lasts && f.until.IsZero()) || (k.pauses && f.d == 0) {
		return nil, fmt.Errorf("%s needs until= or for=", f.kind)
	}
	return f, nil
}

// parseOffset reads a virtual time given as the duration since the start.
func parseOffset(what, v string) (time.Time, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%s %q: want a duration since the start, like 1m30s", what, v)
	}
	return Epoch.Add(d), nil
}

// scheduleFault queues the fault's events: the fault at f.at, and its end when it
// lasts. The event names are the trace lines of the fault.
func (c *Cluster) scheduleFault(f *plannedFault) error {
	m := c.byID[f.machine]
	if m == nil && f.machine != "" {
		return fmt.Errorf("sim: no machine %q", f.machine)
	}
	id := f.machine
	switch f.kind {
	case "crash":
		c.At(f.at, fmt.Sprintf("fault: crash %s until %s", id, f.until.Sub(Epoch)), func() { c.noteSkipped(c.CrashMachine(id)) })
		c.At(f.until, "fault ends: return "+id, func() { c.noteSkipped(c.ReturnMachine(id)) })
	case "restart-fleetd":
		c.At(f.at, "fault: restart fleetd on "+id, func() { c.noteSkipped(c.RestartFleetd(id)) })
	case "partition":
		c.At(f.at, fmt.Sprintf("fault: partition %s until %s", id, f.until.Sub(Epoch)), func() { c.noteSkipped(c.Partition(id, true)) })
		c.At(f.until, "fault ends: reconnect "+id, func() { c.noteSkipped(c.Partition(id, false)) })
	case "registry-down":
		c.At(f.at, fmt.Sprintf("fault: registry down until %s", f.until.Sub(Epoch)), func() { c.RegistryDown(true) })
		c.At(f.until, "fault ends: registry up", func() { c.RegistryDown(false) })
	case "stall-engine":
		// The leading engine when there is one, else the machine's.
		c.At(f.at, fmt.Sprintf("fault: stall the leading engine for %s", f.d), func() {
			e := c.leasing.current.Engine
			if e == "" {
				e = id
			}
			c.noteSkipped(c.StallEngine(e, f.d))
		})
	case "pause-engine-write":
		c.At(f.at, fmt.Sprintf("fault: pause the leading engine's next write for %s", f.d), func() {
			e := c.leasing.current.Engine
			if e == "" || c.byID[e].engine == nil {
				e = id
			}
			c.noteSkipped(c.PauseEngineWrite(e, f.d))
		})
	case "restart-systemd":
		c.At(f.at, "fault: restart systemd on "+id, func() {
			if m.up {
				c.noteSkipped(c.RestartSystemd(id))
			}
		})
	case "crash-unit":
		c.At(f.at, "fault: a unit crashes on "+id, func() {
			if u := c.strikeUnit(m, f); u != "" {
				c.noteSkipped(c.CrashUnit(id, u))
			}
		})
	case "systemctl-stop":
		c.At(f.at, "fault: systemctl stop of a unit on "+id, func() {
			if u := c.strikeUnit(m, f); u != "" {
				c.noteSkipped(c.StopUnitBehindBack(id, u))
			}
		})
	case "fail-starts":
		c.At(f.at, fmt.Sprintf("fault: start jobs fail on %s until %s", id, f.until.Sub(Epoch)), func() {
			if m.up {
				c.noteSkipped(c.FailStarts(id, true))
			}
		})
		c.At(f.until, "fault ends: start jobs succeed on "+id, func() {
			if m.up {
				c.noteSkipped(c.FailStarts(id, false))
			}
		})
	default:
		return fmt.Errorf("sim: unknown fault %q", f.kind)
	}
	return nil
}

// strikeUnit returns the unit a crash-unit or systemctl-stop strikes on m, or
// "" if m is down or its systemd lists none: drawn in a generated run, the
// recorded one in a replay.
func (c *Cluster) strikeUnit(m *Machine, f *plannedFault) string {
	if !m.up {
		return ""
	}
	units, err := m.sd.Units(c.ctx)
	if err != nil {
		c.noteSkipped(err)
		return ""
	}
	if len(units) == 0 {
		return ""
	}
	if f.draw == nil {
		return f.unit
	}
	names := make([]string, len(units))
	for i, u := range units {
		names[i] = u.Name
	}
	sort.Strings(names)
	f.unit = f.draw(names)
	return f.unit
}

// noteSkipped records a fault that could not strike (its machine was down,
// say) in the trace, where a reader of the run will look for it.
func (c *Cluster) noteSkipped(err error) {
	if err != nil {
		c.tracef("-", "fault skipped: %v", err)
	}
}
