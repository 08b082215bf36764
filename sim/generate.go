package sim

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The fault levels of a generated scenario.
const (
	FaultsNone  = "none"
	FaultsLight = "light"
	FaultsHeavy = "heavy"
)

// faultProfile is how often faults strike and how far machine clocks drift.
type faultProfile struct {
	every    time.Duration  // mean time between two faults
	skew     time.Duration  // bound of each machine's clock offset
	registry RegistryFaults // during the fault phase
}

var faultProfiles = map[string]faultProfile{
	FaultsNone:  {},
	FaultsLight: {every: 20 * time.Second, skew: 100 * time.Millisecond, registry: RegistryFaults{LoseReply: 0.005, SlowCall: 0.005, DropWakeup: 0.01}},
	FaultsHeavy: {every: 4 * time.Second, skew: time.Second, registry: RegistryFaults{LoseReply: 0.02, SlowCall: 0.02, DropWakeup: 0.05}},
}

// GenConfig describes a generated scenario. Zero fields take the defaults given.
type GenConfig struct {
	Machines int    // machines in the cluster (required, ≥ 1)
	Engines  int    // machines that also run an engine (default 3, at most Machines)
	Units    int    // units submitted and started
	Seed     uint64 // decides the cluster, the units and the faults
	// Faults is FaultsNone (default), FaultsLight or FaultsHeavy.
	Faults string
	// Duration is the virtual time of the fault phase (default 5 min).
	Duration time.Duration
	// Backend makes the registry (default MemoryBackend).
	Backend BackendFactory
	// ConvergeMax bounds each wait for convergence in virtual time (default 10 min).
	ConvergeMax time.Duration
	// Trace, if set, receives every trace line as it happens.
	Trace io.Writer
	// Progress, if set, is called about once per wall second of a long run.
	Progress func(Progress)
	// Context, if set, interrupts the run when it is done: the report then
	// holds what ran until there, Stopped naming the phase.
	Context context.Context
}

// Limits of a generated scenario: beyond them it cannot fit in memory (every
// fault of the duration is drawn up front) or in a sensible time.
const (
	MaxGenMachines = 10_000
	MaxGenUnits    = 1_000_000
	MaxGenDuration = 24 * time.Hour
)

// Validate checks every value of the configuration against its accepted range.
func (g GenConfig) Validate() error { return g.defaults() }

func (g *GenConfig) defaults() error {
	if g.Machines < 1 || g.Machines > MaxGenMachines {
		return fmt.Errorf("sim: generate: %d machines out of range: want 1 to %d", g.Machines, MaxGenMachines)
	}
	if g.Units < 0 || g.Units > MaxGenUnits {
		return fmt.Errorf("sim: generate: %d units out of range: want 0 to %d", g.Units, MaxGenUnits)
	}
	switch {
	case g.Engines == 0:
		g.Engines = min(3, g.Machines)
	case g.Engines < 0 || g.Engines > g.Machines:
		return fmt.Errorf("sim: generate: %d engines out of range: want 1 to the %d machines", g.Engines, g.Machines)
	}
	if g.Faults == "" {
		g.Faults = FaultsNone
	}
	if _, ok := faultProfiles[g.Faults]; !ok {
		return fmt.Errorf("sim: generate: faults %q, want %s, %s or %s", g.Faults, FaultsNone, FaultsLight, FaultsHeavy)
	}
	if g.Duration == 0 {
		g.Duration = 5 * time.Minute
	}
	if g.ConvergeMax == 0 {
		g.ConvergeMax = 10 * time.Minute
	}
	if g.Duration < 0 || g.Duration > MaxGenDuration {
		return fmt.Errorf("sim: generate: duration %s out of range: want 0 to %s", g.Duration, MaxGenDuration)
	}
	if g.ConvergeMax < 0 || g.ConvergeMax > MaxGenDuration {
		return fmt.Errorf("sim: generate: convergence bound %s out of range: want 0 to %s", g.ConvergeMax, MaxGenDuration)
	}
	return nil
}

// Generate builds a cluster from cfg and runs it in four phases, stopping at the
// first broken invariant: machines join; the units are submitted and started and
// the cluster converges; faults drawn from the seed strike for cfg.Duration
// (safety); then every fault heals and the cluster must converge again
// (liveness). The report says what happened. An error means the scenario could
// not be set up; a broken invariant is in the report, not an error.
func Generate(cfg GenConfig) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	wall := time.Now()
	prof := faultProfiles[cfg.Faults]
	c, err := New(Config{Seed: cfg.Seed, Backend: cfg.Backend, MaxSkew: prof.skew, Context: cfg.Context})
	if err != nil {
		return Report{}, fmt.Errorf("sim: generate: %w", err)
	}
	defer c.Close()
	if cfg.Trace != nil {
		// Errors of a trace writer are its owner's to report (bufio keeps them).
		fmt.Fprintf(cfg.Trace, "# seed %d\n", cfg.Seed)
		c.TraceTo(cfg.Trace)
	}
	if cfg.Progress != nil {
		c.OnProgress(cfg.Progress)
	}
	// The generator draws from its own source, not the cluster's, so that a
	// scenario replaying its actions (Report.ReplayScenario) leaves the
	// cluster's draws as they were.
	rng := rand.New(rand.NewPCG(cfg.Seed^0x2545f4914f6cdd1d, ^cfg.Seed))
	g := &generator{cfg: cfg, prof: prof, c: c, rng: rng, faults: map[string]int{}}
	g.note(clusterWords(cfg.Seed, prof.skew, c.backend.Name), "")
	rep := Report{Seed: cfg.Seed, Source: "gen", Config: cfg, Backend: c.backend.Name}
	if err := g.run(&rep); err != nil {
		return Report{}, err
	}
	rep.finish(c, g.faults, time.Since(wall))
	rep.replay = g.steps
	return rep, nil
}

// generator holds the state of one generated scenario.
type generator struct {
	cfg    GenConfig
	prof   faultProfile
	c      *Cluster
	rng    *rand.Rand
	plain  []string       // plain units, the peers MachineOf units follow
	faults map[string]int // faults injected, by kind
	steps  []replayStep   // what it did, as scenario commands
}

// run runs the phases; the first broken invariant ends the run early, with
// rep.Stopped naming the phase.
func (g *generator) run(rep *Report) error {
	c := g.c
	if err := g.addMachines(); err != nil {
		return err
	}
	g.note([]string{"run", "1s"}, "")
	if c.RunFor(time.Second) != nil {
		rep.Stopped = "join"
		return nil
	}
	if err := g.submitUnits(); err != nil {
		return err
	}
	converge := []string{"converge", "max=" + g.cfg.ConvergeMax.String()}
	g.note(converge, "")
	d, err := c.RunUntilConverged(g.cfg.ConvergeMax, time.Second)
	rep.InitialConvergence = d
	if err != nil {
		rep.Stopped = "initial convergence"
		return nil
	}
	end := c.Now().Add(g.cfg.Duration)
	if err := g.scheduleFaults(end); err != nil {
		return fmt.Errorf("sim: generate: %w", err)
	}
	if f := g.prof.registry; f != (RegistryFaults{}) {
		g.note(registryFaultWords(f), "")
		c.SetRegistryFaults(f)
	}
	g.note([]string{"run", g.cfg.Duration.String()}, "")
	if c.RunUntil(end, nil) != nil {
		rep.Stopped = "faults"
		return nil
	}
	g.note([]string{"heal"}, "")
	c.Heal()
	g.note(converge, "")
	d, err = c.RunUntilConverged(g.cfg.ConvergeMax, time.Second)
	rep.HealConvergence = d
	if err != nil {
		rep.Stopped = "convergence after healing"
	}
	return nil
}

// Machine metadata values; generated units ask for them.
var (
	genRegions = []string{"us-east", "us-west", "eu-central"}
	genDisks   = []string{"ssd", "hdd"}
)

// addMachines adds the machines, IDs zero-padded so that they sort by number,
// each with a region and a disk kind; the engines are spread evenly.
func (g *generator) addMachines() error {
	n := g.cfg.Machines
	width := len(strconv.Itoa(n))
	engine := make(map[int]bool, g.cfg.Engines)
	for i := range g.cfg.Engines {
		engine[i*n/g.cfg.Engines] = true
	}
	for i := range n {
		md := map[string]string{
			"region": genRegions[g.rng.IntN(len(genRegions))],
			"disk":   genDisks[g.rng.IntN(len(genDisks))],
		}
		id := fmt.Sprintf("m%0*d", width, i+1)
		if _, err := g.c.AddMachine(id, md, engine[i]); err != nil {
			return fmt.Errorf("sim: generate: %w", err)
		}
		words := []string{"add-machine", id}
		if engine[i] {
			words = append(words, "engine")
		}
		g.note(append(words, "disk="+md["disk"], "region="+md["region"]), "")
	}
	return nil
}

// submitUnits submits and starts the units: mostly plain services; some that ask
// for machine metadata; some in small groups that conflict with each other; some
// that replace a plain unit; a few pinned to one machine (MachineID); some that
// follow a plain unit (MachineOf); and a few global units.
func (g *generator) submitUnits() error {
	n := g.cfg.Units
	globals := 0
	if n >= 10 {
		globals = 1 + min(2, n/20000)
	}
	width := len(strconv.Itoa(max(n-1, 0)))
	conflicts := 0
	for i := range n {
		var name, xfleet string
		switch r := g.rng.IntN(100); {
		case i < globals:
			name, xfleet = fmt.Sprintf("global-%d.service", i), "Global=true"
		case r < 80 || (r >= 94 && len(g.plain) == 0):
			name = fmt.Sprintf("app-%0*d.service", width, i)
			g.plain = append(g.plain, name)
		case r < 88:
			name, xfleet = fmt.Sprintf("meta-%0*d.service", width, i), g.metadataRequirement()
		case r < 94:
			group := conflicts / 3
			conflicts++
			name = fmt.Sprintf("db-g%d-%0*d.service", group, width, i)
			xfleet = fmt.Sprintf("Conflicts=db-g%d-*.service", group)
		case r < 96:
			name = fmt.Sprintf("new-%0*d.service", width, i)
			xfleet = "Replaces=" + g.plain[g.rng.IntN(len(g.plain))]
		case r < 97:
			ms := g.c.Machines()
			name = fmt.Sprintf("pinned-%0*d.service", width, i)
			xfleet = "MachineID=" + ms[g.rng.IntN(len(ms))].ID
		default:
			name = fmt.Sprintf("side-%0*d.service", width, i)
			xfleet = "MachineOf=" + g.plain[g.rng.IntN(len(g.plain))]
		}
		body := defaultUnit
		if xfleet != "" {
			body += "\n[X-Fleet]\n" + xfleet + "\n"
		}
		if err := g.c.SubmitAndStart(name, []byte(body)); err != nil {
			return fmt.Errorf("sim: generate: unit %d: %w", i, err)
		}
		input := ""
		if body != defaultUnit {
			input = strings.TrimSuffix(body, "\n")
		}
		g.note([]string{"submit", name}, input)
		g.note([]string{"start", name}, "")
	}
	return nil
}

// metadataRequirement draws a MachineMetadata requirement: one region, the fast
// disks, or both.
func (g *generator) metadataRequirement() string {
	region := "MachineMetadata=region=" + genRegions[g.rng.IntN(len(genRegions))]
	switch g.rng.IntN(3) {
	case 0:
		return region
	case 1:
		return "MachineMetadata=disk=ssd"
	}
	return region + "\nMachineMetadata=disk=ssd"
}
