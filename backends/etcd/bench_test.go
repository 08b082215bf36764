package etcd

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/core"
)

// The benchmarks measure placements per second through ApplySchedule against
// the raw write rate of the same embedded etcd in the same run (the floor), and
// how many etcd requests the registry spends per scheduled unit and per
// steady-state round. docs/bench/etcd.md has the method and the numbers:
//
//	go test -run '^$' -bench . -benchtime 2s -count 5 ./backends/etcd/

// benchServer starts a server with etcd's default raft timing, durable unless
// noFsync.
func benchServer(b *testing.B, noFsync bool) *Embedded {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := StartEmbedded(ctx, EmbeddedConfig{Dir: b.TempDir(), UnsafeNoFsync: noFsync, Logger: zap.NewNop()})
	if err != nil {
		b.Fatalf("StartEmbedded: %v", err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv
}

// BenchmarkPlacements: placements per second, durable (fsync) and not.
func BenchmarkPlacements(b *testing.B) {
	for _, mode := range []struct {
		name    string
		noFsync bool
	}{{"fsync", false}, {"nofsync", true}} {
		b.Run(mode.name, func(b *testing.B) {
			srv := benchServer(b, mode.noFsync)
			cli, count := countingClient(b, srv.Endpoints())
			b.Run("floor-put", func(b *testing.B) { benchFloorPut(b, cli) })
			b.Run("floor-txn128", func(b *testing.B) { benchFloorTxn(b, cli, 128) })
			for _, size := range []int{1, 128, 1000} {
				b.Run(fmt.Sprintf("apply-batch%d", size), func(b *testing.B) { benchApply(b, cli, count, size) })
			}
		})
	}
}

// benchKeys numbers keys across the sub-benchmarks so that every write creates
// a new key, as a new placement does.
var benchKeys struct {
	sync.Mutex
	n int
}

func nextKeys(n int) int {
	benchKeys.Lock()
	defer benchKeys.Unlock()
	first := benchKeys.n
	benchKeys.n += n
	return first
}

// placementLike is a value the size of a stored placement.
var placementLike = encode(placementValue{Hash: core.HashBytes([]byte("x")), Target: core.Launched})

// benchFloorPut: one plain put per request, sequential: the floor for an
// engine that wrote one placement at a time.
func benchFloorPut(b *testing.B, cli *clientv3.Client) {
	ctx := b.Context()
	start := time.Now()
	n := 0
	for b.Loop() {
		k := nextKeys(1)
		if _, err := cli.Put(ctx, fmt.Sprintf("/floor/sched/m%03d/u%07d.service", k%1000, k), placementLike); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "keys/s")
}

// benchFloorTxn: size unguarded puts per transaction, sequential: the floor
// for batched schedule writes.
func benchFloorTxn(b *testing.B, cli *clientv3.Client, size int) {
	ctx := b.Context()
	start := time.Now()
	n := 0
	for b.Loop() {
		first := nextKeys(size)
		ops := make([]clientv3.Op, size)
		for i := range ops {
			k := first + i
			ops[i] = clientv3.OpPut(fmt.Sprintf("/floor/sched/m%03d/u%07d.service", k%1000, k), placementLike)
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
		n += size
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "keys/s")
}

// benchApply: ApplySchedule of size new placements per call, fenced.
func benchApply(b *testing.B, cli *clientv3.Client, count *requestCounter, size int) {
	ctx := b.Context()
	reg, err := New(cli, WithPrefix(fmt.Sprintf("/bench/%d/", nextKeys(1))))
	if err != nil {
		b.Fatal(err)
	}
	fence, err := reg.AcquireLeadership(ctx, "e1", "e1/1", time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	count.total()
	start := time.Now()
	n := 0
	for b.Loop() {
		first := nextKeys(size)
		ops := make([]core.ScheduleOp, size)
		for i := range ops {
			k := first + i
			ops[i] = core.ScheduleOp{Kind: core.OpPlace, Placement: core.Placement{
				Unit: fmt.Sprintf("u%07d.service", k), Machine: fmt.Sprintf("m%03d", k%1000),
				Hash: core.HashBytes([]byte("x")), TargetState: core.Launched,
			}}
		}
		if _, err := reg.ApplySchedule(ctx, fence, ops); err != nil {
			b.Fatal(err)
		}
		n += size
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "placements/s")
	b.ReportMetric(float64(count.total())/float64(n), "req/placement")
}

// BenchmarkUnitCycle counts the etcd requests the registry calls of one
// scheduling cycle cost per unit: 100 units submitted and started, one engine
// pass (read units, machines and placements; schedule in one call) and one
// pass of each of 10 agents (read its placements and the global units, fetch
// each new unit's contents, publish the states).
func BenchmarkUnitCycle(b *testing.B) {
	const units, machines = 100, 10
	srv := benchServer(b, true)
	cli, count := countingClient(b, srv.Endpoints())
	ctx := b.Context()
	reg, err := New(cli)
	if err != nil {
		b.Fatal(err)
	}
	// The leases outlive a long run (200 cycles take minutes): nothing renews
	// them between cycles.
	for m := range machines {
		if err := reg.Heartbeat(ctx, core.MachineState{ID: fmt.Sprintf("m%d", m)}, "s", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	fence, err := reg.AcquireLeadership(ctx, "e1", "e1/1", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	count.total()
	cycles := 0
	for b.Loop() {
		unitCycle(b, reg, fence, cycles, units, machines)
		cycles++
	}
	b.ReportMetric(float64(count.total())/float64(cycles*units), "req/unit")
}

func unitCycle(b *testing.B, reg *Registry, fence core.Fence, cycle, units, machines int) {
	ctx := b.Context()
	var ops []core.ScheduleOp
	for i := range units {
		u, c := testUnit(fmt.Sprintf("c%d-u%d.service", cycle, i), false, fmt.Sprintf("%d-%d", cycle, i))
		must2(b, reg.CreateUnit(ctx, u, c))
		must2(b, reg.SetTargetState(ctx, u.Name, core.Launched))
		ops = append(ops, core.ScheduleOp{Kind: core.OpPlace, Placement: core.Placement{
			Unit: u.Name, Machine: fmt.Sprintf("m%d", i%machines), Hash: u.Hash, TargetState: core.Launched}})
	}
	_, err := reg.Units(ctx)
	must2(b, err)
	_, err = reg.Machines(ctx)
	must2(b, err)
	_, err = reg.Placements(ctx)
	must2(b, err)
	must2(b, second(reg.ApplySchedule(ctx, fence, ops)))
	for m := range machines {
		id := fmt.Sprintf("m%d", m)
		ps, err := reg.MachinePlacements(ctx, id)
		must2(b, err)
		_, err = reg.GlobalUnits(ctx)
		must2(b, err)
		var states []core.UnitState
		for _, p := range ps {
			if p.Unit[:len(fmt.Sprintf("c%d-", cycle))] != fmt.Sprintf("c%d-", cycle) {
				continue // placed in an earlier cycle: already running
			}
			_, err := reg.UnitContents(ctx, p.Hash)
			must2(b, err)
			states = append(states, core.UnitState{Unit: p.Unit, Hash: p.Hash, LoadState: "loaded", ActiveState: "active", SubState: "running"})
		}
		must2(b, reg.PublishUnitStates(ctx, id, "s", states, nil))
	}
}

func must2(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSteadyState: 10,000 placed units on 1,000 machines; one round is
// every agent's heartbeat and the engine's leadership renewal. It reports the
// requests per round counted by the client, and the range reads counted by the
// server's own gRPC metrics.
func BenchmarkSteadyState(b *testing.B) {
	const units, machines = 10_000, 1_000
	srv := benchServer(b, true)
	cli, count := countingClient(b, srv.Endpoints())
	ctx := b.Context()
	reg, err := New(cli)
	if err != nil {
		b.Fatal(err)
	}
	fence, err := reg.AcquireLeadership(ctx, "e1", "e1/1", time.Minute)
	must2(b, err)
	ops := make([]core.ScheduleOp, 0, units)
	for i := range units {
		u, c := testUnit(fmt.Sprintf("u%05d.service", i), false, fmt.Sprint(i))
		must2(b, reg.CreateUnit(ctx, u, c))
		ops = append(ops, core.ScheduleOp{Kind: core.OpPlace, Placement: core.Placement{
			Unit: u.Name, Machine: fmt.Sprintf("m%04d", i%machines), Hash: u.Hash, TargetState: core.Launched}})
	}
	must2(b, second(reg.ApplySchedule(ctx, fence, ops)))
	round := func() {
		for m := range machines {
			must2(b, reg.Heartbeat(ctx, core.MachineState{ID: fmt.Sprintf("m%04d", m)}, "s", time.Minute))
		}
		_, err := reg.AcquireLeadership(ctx, "e1", "e1/1", time.Minute)
		must2(b, err)
	}
	round() // the first heartbeats create the presences
	count.total()
	ranges := serverHandled(b, "Range")
	rounds := 0
	for b.Loop() {
		round()
		rounds++
	}
	b.ReportMetric(float64(count.total())/float64(rounds), "req/round")
	b.ReportMetric((serverHandled(b, "Range")-ranges)/float64(rounds), "ranges/round")
}

// serverHandled reads the requests of one gRPC method that the in-process etcd
// servers have handled, from their Prometheus metrics.
func serverHandled(b *testing.B, method string) float64 {
	b.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grpc_method" && l.GetValue() == method {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
