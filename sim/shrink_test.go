package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestShrinkFindsTheTwoStepsThatMatter shrinks 40 removable steps with a
// predicate that fails only when two given ones are both present.
func TestShrinkFindsTheTwoStepsThatMatter(t *testing.T) {
	steps := []Step{{Words: []string{"cluster", "seed=1"}}, {Words: []string{"add-machine", "m1", "engine"}}}
	for i := range 20 {
		name := fmt.Sprintf("u%d.service", i)
		steps = append(steps, Step{Words: []string{"submit", name}}, Step{Words: []string{"start", name}}, Step{Words: []string{"crash-unit", "m1", name}, Want: "x\n"})
	}
	steps = append(steps, Step{Words: []string{"run", "1m"}})
	fails := func(s []Step) bool {
		text := FormatScenario(s)
		return strings.Contains(text, "start u7.service") && strings.Contains(text, "crash-unit m1 u13.service") && strings.Contains(text, "run 1m")
	}
	got, calls := Shrink(steps, fails, 1000)
	var cmds []string
	for _, s := range got {
		cmds = append(cmds, s.Command())
		if s.Want != "" {
			t.Errorf("%s keeps its expected output", s.Command())
		}
	}
	want := "cluster seed=1|add-machine m1 engine|submit u7.service|start u7.service|crash-unit m1 u13.service|run 1m"
	if strings.Join(cmds, "|") != want {
		t.Errorf("shrunk to %q, want %q", strings.Join(cmds, "|"), want)
	}
	if calls > 200 {
		t.Errorf("%d calls of the predicate", calls)
	}
	if _, calls := Shrink(steps, fails, 5); calls > 5 {
		t.Errorf("%d calls over a budget of 5", calls)
	}
}

// TestShrinkGeneratedRun shrinks a generated run whose convergence must come
// sooner than a systemd job can finish: one unit is enough to fail.
func TestShrinkGeneratedRun(t *testing.T) {
	rep, err := Generate(GenConfig{Machines: 4, Units: 15, Seed: 5, ConvergeMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stopped != "initial convergence" {
		t.Fatalf("the run did not fail to converge:\n%s", rep)
	}
	steps := rep.ReplaySteps()
	res, err := RunScenario(steps, RunOptions{}, func(StepResult) {})
	if err != nil || res.TraceHash != rep.TraceHash {
		t.Errorf("the failing run's replay: trace %s, want %s (%v)", res.TraceHash, rep.TraceHash, err)
	}
	fails := BreaksInvariant(InvConvergence, RunOptions{})
	if !fails(steps) {
		t.Fatal("the replayed run does not fail")
	}
	got, _ := Shrink(steps, fails, 500)
	text := FormatScenario(got)
	if n := strings.Count(text, "\nstart "); n != 1 || !fails(got) {
		t.Errorf("shrunk to %d starts, want 1 that still fails:\n%s", n, text)
	}
	if !strings.Contains(text, "converge max=50ms") || strings.Count(text, "add-machine") != 4 {
		t.Errorf("the shrunk scenario lost its machines or its convergence:\n%s", text)
	}
}
