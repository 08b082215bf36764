package fakesystemd_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
)

// unitsPerManager is the simulator's expected load: about ten units a machine.
const unitsPerManager = 10

// busyManager returns a manager with unitsPerManager running units.
func busyManager(b *testing.B, clock *testClock) *fakesystemd.Manager {
	ctx := context.Background()
	m := fakesystemd.New(clock)
	for i := range unitsPerManager {
		if err := m.WriteUnit(ctx, fmt.Sprintf("app-%02d.service", i), []byte(sleeper)); err != nil {
			b.Fatal(err)
		}
	}
	if err := m.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range unitsPerManager {
		if err := m.Start(ctx, fmt.Sprintf("app-%02d.service", i)); err != nil {
			b.Fatal(err)
		}
	}
	return m
}

// BenchmarkMemoryPerManager reports the heap held by one manager with ten
// running units (metric bytes/manager), as the simulator keeps thousands.
func BenchmarkMemoryPerManager(b *testing.B) {
	const managers = 1000
	clock := newTestClock()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ms := make([]*fakesystemd.Manager, managers)
		for i := range ms {
			ms[i] = busyManager(b, clock)
		}
		clock.Advance(time.Second)
		for _, m := range ms {
			m.Step()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/managers, "bytes/manager")
		runtime.KeepAlive(ms)
	}
}

// BenchmarkUnits measures one Units call on a manager with ten running units.
func BenchmarkUnits(b *testing.B) {
	clock := newTestClock()
	m := busyManager(b, clock)
	clock.Advance(time.Second)
	ctx := context.Background()
	for b.Loop() {
		if _, err := m.Units(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartStop measures a start and a stop, each run to completion.
func BenchmarkStartStop(b *testing.B) {
	clock := newTestClock()
	m := busyManager(b, clock)
	ctx := context.Background()
	for b.Loop() {
		if err := m.Stop(ctx, "app-05.service"); err != nil {
			b.Fatal(err)
		}
		clock.Advance(time.Second)
		m.Step()
		if err := m.Start(ctx, "app-05.service"); err != nil {
			b.Fatal(err)
		}
		clock.Advance(time.Second)
		m.Step()
	}
}
