package sim

import (
	"strings"
	"testing"
	"time"
)

// TestReplayScenarioGivesTheSameTrace runs generated clusters with faults,
// then their emitted scenarios, and wants the same trace hash.
func TestReplayScenarioGivesTheSameTrace(t *testing.T) {
	for _, cfg := range []GenConfig{
		{Machines: 6, Units: 40, Seed: 1, Faults: FaultsHeavy, Duration: 2 * time.Minute},
		{Machines: 5, Units: 30, Seed: 2, Faults: FaultsLight, Duration: 3 * time.Minute},
		{Machines: 12, Engines: 2, Units: 60, Seed: 3, Faults: FaultsHeavy, Duration: 90 * time.Second},
	} {
		rep, err := Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		text := rep.ReplayScenario()
		if !strings.Contains(text, "\nat ") || !strings.Contains(text, "\nregistry-faults ") {
			t.Errorf("seed %d: no faults in the scenario:\n%.2000s", cfg.Seed, text)
		}
		steps, err := ParseScenario("replay.txt", text)
		if err != nil {
			t.Fatalf("seed %d: %v", cfg.Seed, err)
		}
		res, err := RunScenario(steps, RunOptions{}, func(StepResult) {})
		if err != nil {
			t.Fatalf("seed %d: %v", cfg.Seed, err)
		}
		if res.TraceHash != rep.TraceHash {
			t.Errorf("seed %d: replay trace %s, generated %s", cfg.Seed, res.TraceHash, rep.TraceHash)
		}
	}
}
