package sim

import (
	"strings"
	"testing"
	"time"
)

func TestGenerateHeavyFaultsHoldsInvariants(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		rep, err := Generate(GenConfig{Machines: 8, Units: 60, Seed: seed, Faults: FaultsHeavy, Duration: 3 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Stopped != "" {
			t.Fatalf("seed %d:\n%s", seed, rep)
		}
		if len(rep.Faults) == 0 || rep.Work.Decisions < 60 {
			t.Errorf("seed %d: want faults and at least one decision per unit:\n%s", seed, rep)
		}
		if !strings.HasPrefix(rep.String(), "seed ") {
			t.Errorf("report does not start with the seed:\n%s", rep)
		}
	}
}

func TestGenerateSameSeedSameTrace(t *testing.T) {
	cfg := GenConfig{Machines: 6, Units: 40, Seed: 9, Faults: FaultsLight, Duration: 2 * time.Minute}
	a, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.TraceHash != b.TraceHash || a.Work != b.Work || a.Failovers != b.Failovers {
		t.Errorf("same seed, different runs:\n%s\n%s", a, b)
	}
	cfg.Seed++
	if c, _ := Generate(cfg); c.TraceHash == a.TraceHash {
		t.Errorf("different seeds gave the same trace %s", a.TraceHash)
	}
}

func TestGenerateRejectsBadConfig(t *testing.T) {
	for _, cfg := range []GenConfig{{}, {Machines: 2, Faults: "some"}, {Machines: 2, Units: -1}} {
		if _, err := Generate(cfg); err == nil {
			t.Errorf("Generate(%+v) accepted a bad config", cfg)
		}
	}
}

func TestReportSummaries(t *testing.T) {
	var fs []Failover
	for i := 1; i <= 200; i++ {
		fs = append(fs, Failover{Latency: time.Duration(i) * time.Millisecond})
	}
	want := Latency{Count: 200, Median: 101 * time.Millisecond, P99: 198 * time.Millisecond, Max: 200 * time.Millisecond}
	if got := latencyOf(fs); got != want {
		t.Errorf("latencyOf = %+v, want %+v", got, want)
	}
	if got := spreadOf(map[string]int{"a": 3, "b": 1, "c": 7}); got != (Spread{Min: 1, Median: 3, Max: 7}) {
		t.Errorf("spreadOf = %+v", got)
	}
	rs := invariantResults([]Violation{{Invariant: InvFailover, At: "1s", Detail: "late"}, {Invariant: InvFailover, At: "2s"}})
	rep := Report{Seed: 5, Invariants: rs}
	if rep.OK() || len(rs) != 7 || rs[4].Held || rs[4].First.At != "1s" || !rs[0].Held {
		t.Errorf("invariant results %+v", rs)
	}
	if s := rep.String(); !strings.HasPrefix(s, "seed 5\n") || !strings.Contains(s, "failover          BROKEN at 1s: late") || !strings.Contains(s, "result: FAILED") {
		t.Errorf("report:\n%s", s)
	}
}
