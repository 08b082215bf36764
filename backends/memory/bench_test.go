package memory_test

import (
	"fmt"
	"testing"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

// placeOps returns n OpPlace ops spreading n units over machines machines.
func placeOps(n, machines int, state core.JobState) []core.ScheduleOp {
	ops := make([]core.ScheduleOp, n)
	for i := range ops {
		ops[i] = core.ScheduleOp{Kind: core.OpPlace, Placement: core.Placement{
			Unit:        fmt.Sprintf("u%06d.service", i),
			Machine:     fmt.Sprintf("m%05d", i%machines),
			TargetState: state,
		}}
	}
	return ops
}

// scheduled returns a registry holding n placements over machines machines, and
// the leader's fence.
func scheduled(b *testing.B, n, machines int) (*memory.Registry, core.Fence) {
	b.Helper()
	reg, _ := newRegistry()
	fence, err := reg.AcquireLeadership(b.Context(), "e1", "e1/1", ttl)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := reg.ApplySchedule(b.Context(), fence, placeOps(n, machines, core.Launched)); err != nil {
		b.Fatal(err)
	}
	return reg, fence
}

// BenchmarkApplySchedule1000 applies a batch of 1,000 changing placements.
func BenchmarkApplySchedule1000(b *testing.B) {
	reg, fence := scheduled(b, 1000, 100)
	batches := [][]core.ScheduleOp{placeOps(1000, 100, core.Loaded), placeOps(1000, 100, core.Launched)}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := reg.ApplySchedule(b.Context(), fence, batches[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlacements10000 lists 10,000 placements, after a one-op change each
// time (a merge and a copy) and unchanged (a copy).
func BenchmarkPlacements10000(b *testing.B) {
	for _, changed := range []bool{true, false} {
		b.Run(fmt.Sprintf("changed=%t", changed), func(b *testing.B) {
			reg, fence := scheduled(b, 10_000, 1000)
			flip := [][]core.ScheduleOp{placeOps(1, 1, core.Loaded), placeOps(1, 1, core.Launched)}
			for i := 0; b.Loop(); i++ {
				if changed {
					if _, err := reg.ApplySchedule(b.Context(), fence, flip[i%2]); err != nil {
						b.Fatal(err)
					}
				}
				ps, err := reg.Placements(b.Context())
				if err != nil || len(ps) != 10_000 {
					b.Fatalf("Placements: %d, %v", len(ps), err)
				}
			}
		})
	}
}

// BenchmarkMachinePlacements reads one machine's 10 placements out of 100,000
// on 10,000 machines: the agent's read at simulator scale.
func BenchmarkMachinePlacements(b *testing.B) {
	reg, _ := scheduled(b, 100_000, 10_000)
	for i := 0; b.Loop(); i++ {
		ps, err := reg.MachinePlacements(b.Context(), fmt.Sprintf("m%05d", i%10_000))
		if err != nil || len(ps) != 10 {
			b.Fatalf("MachinePlacements: %d, %v", len(ps), err)
		}
	}
}
