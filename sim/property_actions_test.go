package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/core"
	"pgregory.net/rapid"
)

// The actions of the property tests in property_test.go: user commands,
// machine joins, faults and time jumps, each drawn by rapid.

// drawDuration draws a virtual duration from 10 ms to 60 s, spread over scales.
func drawDuration(t *rapid.T, label string) time.Duration {
	scale := rapid.SampledFrom([]time.Duration{time.Second, 10 * time.Second, 100 * time.Millisecond, 10 * time.Millisecond}).Draw(t, label+"-scale")
	return scale * time.Duration(rapid.IntRange(1, 6).Draw(t, label))
}

// spreadActions are the actions of TestPropSpread: plain units, and faults that
// never move a placement.
func (h *history) spreadActions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"submit":     func(t *rapid.T) { h.submit(t, nil) },
		"start-stop": h.startStop,
		"run":        func(t *rapid.T) { h.advance(t, drawDuration(t, "run")) },
		"fault":      func(t *rapid.T) { h.fault(t, h.fleetdFaults()) },
	}
}

// constraintActions are the user's actions with constrained units, and machine
// joins.
func (h *history) constraintActions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"submit":      func(t *rapid.T) { h.submit(t, h.drawXFleet) },
		"command":     h.command,
		"odd-command": h.oddCommand,
		"destroy":     h.destroy,
		"join": func(t *rapid.T) {
			if len(h.c.Machines()) >= h.maxMach {
				t.Skip("cluster is full")
			}
			h.join(t, rapid.Bool().Draw(t, "engine") && len(h.c.engines) < 3)
		},
		"run": func(t *rapid.T) { h.advance(t, drawDuration(t, "run")) },
	}
}

// faultFunc injects one fault on one of its candidate machines.
type faultFunc struct {
	candidates func() []string
	inject     func(t *rapid.T, id string)
}

// fault injects one of the faults that has a candidate machine now.
func (h *history) fault(t *rapid.T, faults map[string]faultFunc) {
	var names []string
	for n, f := range faults {
		if len(f.candidates()) > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	f := faults[pick(t, names, "fault")]
	f.inject(t, rapid.SampledFrom(f.candidates()).Draw(t, "machine"))
}

// fleetdFaults are the faults that leave every placement where it is: engine
// stalls, fleetd restarts and systemd faults.
func (h *history) fleetdFaults() map[string]faultFunc {
	up := func() []string { return h.machineIDs(true) }
	upDo := func(f func(string) error) faultFunc {
		return faultFunc{up, func(t *rapid.T, id string) { must(t, f(id)) }}
	}
	engines := func() []string {
		var ids []string
		for _, m := range h.c.engines {
			ids = append(ids, m.ID)
		}
		return ids
	}
	return map[string]faultFunc{
		"restart-fleetd":  upDo(h.c.RestartFleetd),
		"restart-systemd": upDo(h.c.RestartSystemd),
		"systemctl-stop":  {up, func(t *rapid.T, id string) { h.onUnit(t, id, h.c.StopUnitBehindBack) }},
		"crash-unit":      {up, func(t *rapid.T, id string) { h.onUnit(t, id, h.c.CrashUnit) }},
		"stall-engine": {engines, func(t *rapid.T, id string) {
			must(t, h.c.StallEngine(id, drawDuration(t, "stall")))
		}},
	}
}

// allFaults are every fault the simulator injects.
func (h *history) allFaults() map[string]faultFunc {
	faults := h.fleetdFaults()
	all := func() []string {
		var ids []string
		for _, m := range h.c.Machines() {
			ids = append(ids, m.ID)
		}
		return ids
	}
	toggle := func(on map[string]bool, set func(string, bool) error) func(*rapid.T, string) {
		return func(t *rapid.T, id string) {
			must(t, set(id, !on[id]))
			on[id] = !on[id]
		}
	}
	faults["crash"] = faultFunc{func() []string { return h.machineIDs(true) }, func(t *rapid.T, id string) { must(t, h.c.CrashMachine(id)) }}
	faults["return"] = faultFunc{func() []string { return h.machineIDs(false) }, func(t *rapid.T, id string) { must(t, h.c.ReturnMachine(id)) }}
	faults["partition"] = faultFunc{all, toggle(h.cut, func(id string, on bool) error { return h.c.Partition(id, on) })}
	faults["fail-starts"] = faultFunc{func() []string { return h.machineIDs(true) }, toggle(h.failing, h.c.FailStarts)}
	faults["pause-engine-write"] = faultFunc{func() []string { return h.engineIDs(true) }, func(t *rapid.T, id string) {
		must(t, h.c.PauseEngineWrite(id, drawDuration(t, "pause")))
	}}
	faults["registry-faults"] = faultFunc{func() []string { return []string{"registry"} }, func(t *rapid.T, _ string) {
		rate := rapid.SampledFrom([]float64{0, 0.05, 0.3}).Draw(t, "rate")
		h.c.SetRegistryFaults(RegistryFaults{LoseReply: rate, SlowCall: rate, DropWakeup: rate})
	}}
	faults["registry"] = faultFunc{func() []string { return []string{"registry"} }, func(*rapid.T, string) {
		h.regDown = !h.regDown
		h.c.RegistryDown(h.regDown)
	}}
	return faults
}

func must(t *rapid.T, err error) {
	if err != nil {
		t.Fatal(err)
	}
}

// pick draws one of xs, or skips the action if there is none.
func pick(t *rapid.T, xs []string, label string) string {
	if len(xs) == 0 {
		t.Skip("no " + label)
	}
	return rapid.SampledFrom(xs).Draw(t, label)
}

// machineIDs lists the machines that are up (or down).
func (h *history) machineIDs(up bool) []string {
	var ids []string
	for _, m := range h.c.Machines() {
		if m.Up() == up {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// engineIDs lists the machines that run an engine and are up (or down).
func (h *history) engineIDs(up bool) []string {
	var ids []string
	for _, m := range h.c.engines {
		if m.Up() == up {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func (h *history) unitNames() []string {
	names := make([]string, 0, len(h.units))
	for n := range h.units {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// onUnit applies a systemd fault to one unit that machine id's systemd knows.
func (h *history) onUnit(t *rapid.T, id string, f func(id, unit string) error) {
	units, err := h.c.Machine(id).sd.Units(h.c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(units))
	for _, u := range units {
		names = append(names, u.Name)
	}
	if len(names) == 0 {
		return
	}
	if err := f(id, rapid.SampledFrom(names).Draw(t, "unit")); err != nil {
		t.Fatal(err)
	}
}

// Unit names come from a small set so that globs and peers meet.
var propUnitNames = []string{
	"a.service", "b.service", "c.service", "d.service", "db.service", "db-replica.service",
	"web@1.service", "web@2.service", "web@3.service", "cache.service", "log.service",
	"mon.service", "e.service", "f.service", "g.service", "db@1.service", "db@2.service",
}

// unitServices are the [Service] sections units draw from: mostly a service
// that runs until stopped, and units that end by themselves, which fleet
// starts once and leaves ended: a oneshot, a service that exits 0, and one
// that exits 1 and that systemd restarts (Restart=on-failure) until its start
// limit fails it.
var unitServices = []string{
	"ExecStart=/bin/sleep infinity",
	"ExecStart=/bin/sleep infinity",
	"ExecStart=/bin/sleep infinity",
	"Type=oneshot\nExecStart=/bin/true",
	"ExecStart=/bin/true",
	"ExecStart=/bin/false\nRestart=on-failure\nRestartSec=1",
}

// submit submits one to three units. With constraints, it sometimes submits
// a pair that spells metadata in the two ways that must not be confused: one
// value with a comma in it, and two values, in a random order, so that one
// engine pass places both.
func (h *history) submit(t *rapid.T, xfleet func(*rapid.T, string) []string) {
	if xfleet != nil && rapid.IntRange(0, 4).Draw(t, "metadata-pair") == 0 {
		spellings := []string{"MachineMetadata=role=back,front", `MachineMetadata="role=front" "role=back"`}
		if rapid.Bool().Draw(t, "pair-order") {
			spellings[0], spellings[1] = spellings[1], spellings[0]
		}
		for _, line := range spellings {
			h.submitOne(t, func(*rapid.T, string) []string { return []string{line} })
		}
		return
	}
	for n := rapid.IntRange(1, 3).Draw(t, "units"); n > 0; n-- {
		h.submitOne(t, xfleet)
	}
}

// submitOne submits an unused unit name with the [X-Fleet] lines xfleet draws
// (none if nil) and gives it a random target state.
func (h *history) submitOne(t *rapid.T, xfleet func(*rapid.T, string) []string) {
	var free []string
	for _, n := range propUnitNames {
		if _, ok := h.units[n]; !ok {
			free = append(free, n)
		}
	}
	name := pick(t, free, "unit name")
	var lines []string
	if xfleet != nil {
		lines = xfleet(t, name)
	}
	target := rapid.SampledFrom([]core.JobState{core.Launched, core.Launched, core.Loaded, core.Inactive}).Draw(t, "target")
	body := "[Service]\n" + rapid.SampledFrom(unitServices).Draw(t, "service") + "\n"
	if len(lines) > 0 {
		body += "\n[X-Fleet]\n" + strings.Join(lines, "\n") + "\n"
	}
	if !h.userError(t, "submit "+name, h.c.Submit(name, []byte(body))) {
		return
	}
	h.units[name] = core.Inactive
	cmd := map[core.JobState]core.Command{core.Launched: core.CmdStart, core.Loaded: core.CmdLoad}[target]
	if cmd != "" && h.userError(t, string(cmd)+" "+name, h.c.Command(cmd, name)) {
		h.units[name] = target
	}
}

// drawXFleet draws one kind of constraint for unit name, sometimes with
// metadata as well.
func (h *history) drawXFleet(t *rapid.T, name string) []string {
	var lines []string
	withMeta := rapid.Bool().Draw(t, "with-metadata")
	kinds := []string{"plain", "metadata", "conflicts", "machineof", "global", "replaces", "replaces-unit", "machineid", "machineid-never"}
	if strings.HasPrefix(name, "web@") {
		kinds = append(kinds, "machineof-instance")
	}
	switch rapid.SampledFrom(kinds).Draw(t, "constraint") {
	case "plain":
		withMeta = false
	case "metadata":
		withMeta = true
	case "conflicts":
		lines = append(lines, "Conflicts="+rapid.SampledFrom(propGlobs).Draw(t, "conflicts"))
	case "replaces":
		lines = append(lines, "Replaces="+rapid.SampledFrom(propGlobs).Draw(t, "replaces"))
	case "replaces-unit":
		// A unit replacing a submitted one, so that Replaces chains form.
		if names := h.unitNames(); len(names) > 0 {
			lines = append(lines, "Replaces="+rapid.SampledFrom(names).Draw(t, "replaced"))
		}
	case "machineof-instance":
		lines = append(lines, "MachineOf=db@%i.service")
	case "machineid-never":
		lines = append(lines, fmt.Sprintf("MachineID=%s%024x", "e7a1c4d0", 0xdead))
	case "global":
		lines = append(lines, "Global=true")
	case "machineof":
		peers := h.unitNames()
		if len(peers) > 0 {
			lines = append(lines, "MachineOf="+rapid.SampledFrom(peers).Draw(t, "peer"))
		}
	case "machineid":
		ms := h.c.Machines()
		id := ms[rapid.IntRange(0, len(ms)-1).Draw(t, "machine")].ID
		if rapid.Bool().Draw(t, "short-id") {
			id = id[:core.ShortIDLength]
		}
		lines = append(lines, "MachineID="+id)
	}
	if withMeta {
		lines = append(lines, drawMetadata(t))
	}
	return lines
}

// propGlobs are the Conflicts= and Replaces= values units draw from.
var propGlobs = []string{"web@*.service", "%p@*.service", "a.service", "db*.service", "b.service", "*.service"}

// drawMetadata draws a MachineMetadata= line over the keys machines have.
func drawMetadata(t *rapid.T) string {
	switch rapid.IntRange(0, 4).Draw(t, "metadata") {
	case 0:
		return "MachineMetadata=role=" + rapid.SampledFrom([]string{"front", "back"}).Draw(t, "role")
	case 1:
		return `MachineMetadata="disk=ssd" "disk=hdd"`
	case 2:
		// One value with a comma in it, which some machines have, spelled as the
		// two values of case 3 would be joined.
		return "MachineMetadata=role=back,front"
	case 3:
		return `MachineMetadata="role=front" "role=back"`
	}
	return `MachineMetadata="role=front" "disk=ssd"`
}

// startStop starts a loaded unit or stops a launched one: the placement stays.
func (h *history) startStop(t *rapid.T) {
	name := pick(t, h.unitNames(), "unit")
	cmd := core.CmdStart
	if h.units[name] == core.Launched {
		cmd = core.CmdStop
	}
	h.apply(t, cmd, name)
}

// command changes a unit's target state with a command valid from its state.
func (h *history) command(t *rapid.T) {
	name := pick(t, h.unitNames(), "unit")
	valid := map[core.JobState][]core.Command{
		core.Inactive: {core.CmdLoad, core.CmdStart},
		core.Loaded:   {core.CmdStart, core.CmdUnload},
		core.Launched: {core.CmdStop, core.CmdUnload},
	}[h.units[name]]
	h.apply(t, rapid.SampledFrom(valid).Draw(t, "command"), name)
}

func (h *history) destroy(t *rapid.T) {
	h.apply(t, core.CmdDestroy, pick(t, h.unitNames(), "unit"))
}

// oddCommand runs any command on any unit name, submitted or not, as users
// do: a command the state machine refuses must fail and change nothing; a
// repeated one is accepted and changes nothing.
func (h *history) oddCommand(t *rapid.T) {
	name := rapid.SampledFrom(propUnitNames).Draw(t, "unit")
	cmd := rapid.SampledFrom([]core.Command{core.CmdLoad, core.CmdStart, core.CmdStop, core.CmdUnload, core.CmdDestroy}).Draw(t, "command")
	from, known := h.units[name]
	if _, err := core.Transition(name, cmd, from); err != nil || !known {
		if err := h.c.Command(cmd, name); err == nil {
			t.Fatalf("%s %s (submitted %t, target %q) was accepted", cmd, name, known, from)
		}
		return
	}
	h.apply(t, cmd, name)
}

// apply runs a user command and records its effect.
func (h *history) apply(t *rapid.T, cmd core.Command, name string) {
	to, err := core.Transition(name, cmd, h.units[name])
	if err != nil {
		t.Fatal(err)
	}
	if !h.userError(t, string(cmd)+" "+name, h.c.Command(cmd, name)) {
		return
	}
	if cmd == core.CmdDestroy {
		delete(h.units, name)
		return
	}
	h.units[name] = to
}
