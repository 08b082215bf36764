package sim

import (
	"testing"
	"time"
)

// runGenerated runs cfg once per benchmark iteration and reports the run's
// virtual and wall times, fails on a broken invariant, and returns the last
// report.
func runGenerated(b *testing.B, cfg GenConfig) Report {
	b.Helper()
	var rep Report
	for b.Loop() {
		var err error
		if rep, err = Generate(cfg); err != nil {
			b.Fatal(err)
		}
		if !rep.OK() || rep.Stopped != "" {
			b.Fatalf("invariant broken:\n%s", rep)
		}
	}
	b.ReportMetric(rep.Wall.Seconds(), "wall-s/run")
	b.ReportMetric(rep.Virtual.Seconds(), "virtual-s/run")
	b.ReportMetric(rep.Speed, "virtual-s/wall-s")
	b.Logf("\n%s", rep)
	return rep
}

// BenchmarkConverge100kUnits10kMachines: 100,000 units submitted and started on
// 10,000 machines (3 engines, memory backend) until every machine's systemd runs
// its share. Target: ≤ 60 s wall on a 2-core machine. Run with -benchtime 1x.
func BenchmarkConverge100kUnits10kMachines(b *testing.B) {
	rep := runGenerated(b, GenConfig{Machines: 10_000, Units: 100_000, Seed: 1, Faults: FaultsNone, Duration: time.Second})
	b.ReportMetric(rep.InitialConvergence.Seconds(), "virtual-s-to-converge")
}

// BenchmarkSpeed100Machines: 100 machines, 1,000 units, light or heavy faults
// for 30 virtual minutes, then healing and convergence. The metric is
// virtual-s/wall-s (target ≥ 1,000).
func BenchmarkSpeed100Machines(b *testing.B) {
	for _, faults := range []string{FaultsLight, FaultsHeavy} {
		b.Run("faults="+faults, func(b *testing.B) {
			runGenerated(b, GenConfig{Machines: 100, Units: 1_000, Seed: 1, Faults: faults, Duration: 30 * time.Minute})
		})
	}
}
