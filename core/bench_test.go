package core_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

// The scheduler benchmarks. Method and numbers: docs/bench/sim.md. Each
// reports ns/work: the pass's cost divided by its work (units to place plus
// placements to check), which stays flat when the pass is linear in its work.

// benchMachines returns n live machines with zero-padded IDs.
func benchMachines(n int) []core.MachineState {
	ms := make([]core.MachineState, n)
	for i := range ms {
		ms[i] = core.MachineState{ID: fmt.Sprintf("m%05d", i), Metadata: map[string]string{"region": fmt.Sprint("r", i%3)}}
	}
	return ms
}

// benchUnits returns n launched units with the same contents and no
// requirements, sorted by name.
func benchUnits(n int) []core.SchedUnit {
	us := make([]core.SchedUnit, n)
	for i := range us {
		us[i] = core.SchedUnit{Unit: core.Unit{Name: fmt.Sprintf("u%06d.service", i), Hash: "h", TargetState: core.Launched}}
	}
	return us
}

// placed returns the placements of the first n units spread round-robin.
func placed(units []core.SchedUnit, machines []core.MachineState, n int) []core.Placement {
	ps := make([]core.Placement, n)
	for i := range ps {
		u := units[i]
		ps[i] = core.Placement{Unit: u.Name, Machine: machines[i%len(machines)].ID, Hash: u.Hash, TargetState: u.TargetState}
	}
	return ps
}

// benchPlan runs PlanSchedule on s per iteration, checks the number of
// decisions, and reports the cost per unit of work.
func benchPlan(b *testing.B, s core.Snapshot, wantDecisions, work int) {
	b.Helper()
	for b.Loop() {
		if p := core.PlanSchedule(s); len(p.Decisions) != wantDecisions {
			b.Fatalf("%d decisions, want %d", len(p.Decisions), wantDecisions)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(work), "ns/work")
}

// BenchmarkPlanSchedule10kUnits1kMachines places 10,000 units on 1,000 machines
// in one pass.
func BenchmarkPlanSchedule10kUnits1kMachines(b *testing.B) {
	ms, us := benchMachines(1000), benchUnits(10_000)
	benchPlan(b, core.Snapshot{Units: us, Machines: ms}, len(us), len(us))
}

// BenchmarkPlanCurve shows how a pass's cost grows on 1,000 machines with 1k,
// 10k and 100k units: placing all of them ("place-all"), and the steady state
// where all are placed and one new unit arrives ("steady+1"). Both are linear
// in units (the work), never units × machines.
func BenchmarkPlanCurve(b *testing.B) {
	ms := benchMachines(1000)
	for _, n := range []int{1_000, 10_000, 100_000} {
		us := benchUnits(n + 1)
		b.Run(fmt.Sprintf("place-all/units=%d", n), func(b *testing.B) {
			benchPlan(b, core.Snapshot{Units: us[:n], Machines: ms}, n, n)
		})
		b.Run(fmt.Sprintf("steady+1/units=%d", n), func(b *testing.B) {
			benchPlan(b, core.Snapshot{Units: us, Machines: ms, Placements: placed(us, ms, n)}, 1, n+1)
		})
	}
}

// BenchmarkPlanMachines places 10,000 units on 100, 1,000 and 10,000 machines:
// the cost must not grow with units × machines (10× the machines costs far less
// than 10× the time).
func BenchmarkPlanMachines(b *testing.B) {
	us := benchUnits(10_000)
	for _, m := range []int{100, 1_000, 10_000} {
		ms := benchMachines(m)
		b.Run(fmt.Sprintf("machines=%d", m), func(b *testing.B) {
			benchPlan(b, core.Snapshot{Units: us, Machines: ms}, len(us), len(us))
		})
	}
}

// engineBench is an engine over a memory registry holding units and live
// machines.
type engineBench struct {
	reg    *memory.Registry
	engine *core.Engine
	fence  core.Fence
	now    time.Time
}

func newEngineBench(b *testing.B, units, machines int) *engineBench {
	b.Helper()
	ctx := b.Context()
	now := time.Unix(1_000_000, 0)
	reg := memory.New(memory.NewManualClock(now))
	sub, err := core.PrepareUnit("bench.service", []byte("[Service]\nExecStart=/bin/sleep infinity\n"))
	if err != nil {
		b.Fatal(err)
	}
	for i := range units {
		u := sub.Unit
		u.Name, u.TargetState = fmt.Sprintf("u%06d.service", i), core.Launched
		if err := reg.CreateUnit(ctx, u, sub.File.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	for _, m := range benchMachines(machines) {
		if err := reg.Heartbeat(ctx, m, m.ID+"/1", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	e, err := core.NewEngine(core.EngineConfig{ID: "e1", Session: "e1/1", LeaseTTL: time.Hour}, reg)
	if err != nil {
		b.Fatal(err)
	}
	fence, err := reg.AcquireLeadership(ctx, "e1", "e1/1", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return &engineBench{reg: reg, engine: e, fence: fence, now: now}
}

// pass runs one engine pass and checks its number of decisions.
func (eb *engineBench) pass(b *testing.B, want int) {
	res, err := eb.engine.Reconcile(b.Context(), eb.now)
	if err != nil || !res.Leader || len(res.Decisions) != want {
		b.Fatalf("pass: leader %t, %d decisions (want %d), %v", res.Leader, len(res.Decisions), want, err)
	}
}

// unplaceAll removes every placement, so that the next pass places everything.
func (eb *engineBench) unplaceAll(b *testing.B) {
	ps, err := eb.reg.Placements(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	ops := make([]core.ScheduleOp, len(ps))
	for i, p := range ps {
		ops[i] = core.ScheduleOp{Kind: core.OpUnplace, Placement: p}
	}
	if _, err := eb.reg.ApplySchedule(b.Context(), eb.fence, ops); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEngineReconcile10kUnits1kMachines runs whole engine passes over the
// memory registry: reading the cluster, planning and writing 10,000 placements
// ("place-all"), and the steady-state pass with nothing to do ("steady").
func BenchmarkEngineReconcile10kUnits1kMachines(b *testing.B) {
	const units, machines = 10_000, 1_000
	b.Run("place-all", func(b *testing.B) {
		eb := newEngineBench(b, units, machines)
		for b.Loop() {
			b.StopTimer()
			eb.unplaceAll(b)
			b.StartTimer()
			eb.pass(b, units)
		}
	})
	b.Run("steady", func(b *testing.B) {
		eb := newEngineBench(b, units, machines)
		eb.pass(b, units)
		for b.Loop() {
			eb.pass(b, 0)
		}
	})
}
