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

func TestAtSchedulesFaults(t *testing.T) {
	s := NewScript(nil)
	defer s.Close()
	for _, cmd := range []string{"cluster seed=1", "add-machine m1 engine", "add-machine m2", "run 1s", "at 5s crash m2 until=10s", "at 3s partition m1 until=4s", "at 2s registry-down until=2500ms"} {
		if out, err := s.Exec(strings.Fields(cmd), ""); err != nil || strings.Contains(out, "error") {
			t.Fatalf("%s: %q, %v", cmd, out, err)
		}
	}
	out, err := s.Exec([]string{"run", "15s", "verbose"}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[     2.000s] -      fault: registry down until 2.5s\n",
		"[     3.000s] -      fault: partition m1 until 4s\n",
		"[     4.000s] m1     partitioned=false\n",
		"[     5.000s] m2     machine crashes\n",
		"[    10.000s] -      fault ends: return m2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if out, err := s.Exec(strings.Fields("at 1m crash m9 until=2m"), ""); err != nil || !strings.Contains(out, `error: sim: no machine "m9"`) {
		t.Errorf("unknown machine: %q, %v", out, err)
	}
	for _, bad := range []string{
		"at", "at 1m", "at soon crash m1 until=2m", "at 1m explode m1", "at 1m crash m1",
		"at 1m crash m1 until=30s", "at 1m crash m1 for=5s", "at 1m registry-down m1 until=2m",
		"at 1m stall-engine m1 for=-1s", "at 1m crash m1 extra until=2m", "at -1s restart-fleetd m1",
	} {
		if _, err := s.Exec(strings.Fields(bad), ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
