package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// replayStep is one action of a generated run as a scenario command: its
// words and input, or a planned fault, rendered once the run is over (a fault
// knows the unit it struck only then).
type replayStep struct {
	words []string
	input string
	fault *plannedFault
}

// note records an action of the generated run as a scenario command.
func (g *generator) note(words []string, input string) {
	g.steps = append(g.steps, replayStep{words: words, input: input})
}

// clusterWords is the `cluster` command of a generated run.
func clusterWords(seed uint64, skew time.Duration, backend string) []string {
	w := []string{"cluster", "seed=" + strconv.FormatUint(seed, 10)}
	if skew > 0 {
		w = append(w, "skew="+skew.String())
	}
	if backend != "memory" {
		w = append(w, "backend="+backend)
	}
	return w
}

// registryFaultWords is the `registry-faults` command that sets f.
func registryFaultWords(f RegistryFaults) []string {
	rate := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return []string{"registry-faults", "lose-reply=" + rate(f.LoseReply), "slow-call=" + rate(f.SlowCall), "drop-wakeup=" + rate(f.DropWakeup)}
}

// ReplaySteps are the actions of a generated run as scenario steps, up to the
// phase it stopped in: the cluster, the machines, each unit's submit and
// start, the runs and convergences, and each fault as an `at` command at its
// exact virtual time. Run as a scenario, they give the same trace, hence the
// same trace hash. Their expected outputs are empty. Nil for a scenario run.
func (r Report) ReplaySteps() []Step {
	steps := make([]Step, 0, len(r.replay))
	for _, s := range r.replay {
		words := s.words
		if s.fault != nil {
			words = s.fault.words()
		}
		steps = append(steps, Step{Words: words, Input: s.input})
	}
	return steps
}

// ReplayScenario renders ReplaySteps as a scenario file, with a header that
// says where it comes from.
func (r Report) ReplayScenario() string {
	c := r.Config
	header := fmt.Sprintf("# fleetsim gen --machines %d --engines %d --units %d --faults %s --duration %s --seed %d\n"+
		"# replays that run exactly: fleetsim run prints trace sha256 %s\n",
		c.Machines, c.Engines, c.Units, c.Faults, c.Duration, r.Seed, r.TraceHash)
	return header + FormatScenario(r.ReplaySteps())
}

// FormatScenario renders steps in the scenario file format, each with its
// expected output (Want).
func FormatScenario(steps []Step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString("\n" + s.Command() + "\n")
		if s.Input != "" {
			b.WriteString(s.Input + "\n")
		}
		b.WriteString("----\n")
		if strings.Contains(strings.TrimSuffix(s.Want, "\n"), "\n\n") {
			b.WriteString("----\n" + s.Want + "----\n----\n")
		} else {
			b.WriteString(s.Want)
		}
	}
	return b.String()
}
