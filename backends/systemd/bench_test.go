package systemd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/systemd"
	"github.com/fleet-rebuild/fleet/backends/systemd/systemdtest"
)

// BenchmarkLoadStart measures fleet loading and starting many units on one real
// user manager against systemctl --user start of the same units in one batch,
// in the same run. Knobs: FLEET_BENCH_UNITS (default 500), FLEET_BENCH_ROUNDS
// (default 3), FLEET_BENCH_IDLE (seconds of idle CPU measurement, default 5).
// Method and numbers: docs/bench/systemd.md.
//
//	go test -run '^$' -bench LoadStart -benchtime 1x ./backends/systemd/
func BenchmarkLoadStart(b *testing.B) {
	n, rounds, idle := envInt("FLEET_BENCH_UNITS", 500), envInt("FLEET_BENCH_ROUNDS", 3), envInt("FLEET_BENCH_IDLE", 5)
	um := systemdtest.New(b, systemdtest.Options{Name: "bench"})
	ctx := context.Background()
	m, err := systemd.Open(ctx, systemd.Config{Scope: systemd.ScopeUser, Socket: um.Socket(), UnitDir: um.RuntimeDir() + "/fleet/units"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%04d.service", i)
	}
	unit := []byte("[Service]\nExecStart=/bin/sleep 3600\n")
	var (
		s           samples
		idleCPU, uc time.Duration
	)
	for b.Loop() {
		for r := range rounds {
			rd := benchRound(b, um, m, names, unit)
			if r == rounds-1 {
				idleCPU, uc = measureIdle(b, m, time.Duration(idle)*time.Second)
			}
			t0 := time.Now()
			removeAll(b, m, names)
			rd.remove = time.Since(t0)
			s.add(rd)
		}
	}
	s.report(b, n, idleCPU, uc)
}

// round is one measurement of both sides.
type round struct {
	fleetLoad, fleetStart, systemctl time.Duration // wall
	remove                           time.Duration // wall, RemoveUnit of every unit, one after another
	fleetCPU, systemctlCPU           time.Duration // fleet's process; systemctl's process
	mgrFleetCPU, mgrSystemctlCPU     time.Duration // the manager's CPU in each phase
}

func benchRound(b *testing.B, um *systemdtest.UserManager, m *systemd.Manager, names []string, unit []byte) round {
	ctx := context.Background()
	var r round
	cpu0, mgr0, t0 := selfCPU(), procCPU(um.PID()), time.Now()
	for _, name := range names {
		if err := m.WriteUnit(ctx, name, unit); err != nil {
			b.Fatal(err)
		}
	}
	if err := m.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	for _, name := range names {
		if err := m.Start(ctx, name); err != nil {
			b.Fatal(err)
		}
	}
	if err := m.Settle(ctx); err != nil {
		b.Fatal(err)
	}
	r.fleetLoad, r.fleetStart = t1.Sub(t0), time.Since(t1)
	r.fleetCPU, r.mgrFleetCPU = selfCPU()-cpu0, procCPU(um.PID())-mgr0
	requireActive(b, m, len(names))

	systemctl(b, um, "stop", names)
	mgr0 = procCPU(um.PID())
	cmd := exec.Command("systemctl", append([]string{"--user", "start"}, names...)...)
	cmd.Env = um.Env()
	t2 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("systemctl start: %v: %s", err, out)
	}
	r.systemctl = time.Since(t2)
	r.systemctlCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	r.mgrSystemctlCPU = procCPU(um.PID()) - mgr0
	requireActive(b, m, len(names))
	return r
}

func requireActive(b *testing.B, m *systemd.Manager, n int) {
	list, err := m.Units(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	running := 0
	for _, s := range list {
		if s.ActiveState == "active" {
			running++
		}
	}
	if running != n {
		b.Fatalf("%d of %d units active", running, n)
	}
}

func removeAll(b *testing.B, m *systemd.Manager, names []string) {
	ctx := context.Background()
	for _, name := range names {
		if err := m.RemoveUnit(ctx, name); err != nil {
			b.Fatal(err)
		}
	}
	if err := m.Reload(ctx); err != nil {
		b.Fatal(err)
	}
}

func systemctl(b *testing.B, um *systemdtest.UserManager, verb string, names []string) {
	if _, err := um.Systemctl(context.Background(), append([]string{verb}, names...)...); err != nil {
		b.Fatal(err)
	}
}

// measureIdle returns fleet's CPU over d with every unit running and a Notify
// reader waiting, and how long one Units call over all of them takes (median
// of 20).
func measureIdle(b *testing.B, m *systemd.Manager, d time.Duration) (idle, units time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := m.Notify(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
			if _, err := m.Units(ctx); err != nil && ctx.Err() == nil {
				b.Error(err)
			}
		}
	}()
	cpu0 := selfCPU()
	time.Sleep(d)
	idle = selfCPU() - cpu0
	cancel()
	<-done
	var calls []time.Duration
	for range 20 {
		t0 := time.Now()
		if _, err := m.Units(context.Background()); err != nil {
			b.Fatal(err)
		}
		calls = append(calls, time.Since(t0))
	}
	return idle, median(calls)
}

type samples []round

func (s *samples) add(r round) { *s = append(*s, r) }

func (s samples) pick(f func(round) time.Duration) time.Duration {
	var v []time.Duration
	for _, r := range s {
		v = append(v, f(r))
	}
	return median(v)
}

func (s samples) report(b *testing.B, n int, idle, units time.Duration) {
	load, start := s.pick(func(r round) time.Duration { return r.fleetLoad }), s.pick(func(r round) time.Duration { return r.fleetStart })
	sc := s.pick(func(r round) time.Duration { return r.systemctl })
	fcpu, scpu := s.pick(func(r round) time.Duration { return r.fleetCPU }), s.pick(func(r round) time.Duration { return r.systemctlCPU })
	mf, ms := s.pick(func(r round) time.Duration { return r.mgrFleetCPU }), s.pick(func(r round) time.Duration { return r.mgrSystemctlCPU })
	b.ReportMetric(ms2(load), "fleet-load-ms")
	b.ReportMetric(ms2(start), "fleet-start-ms")
	b.ReportMetric(ms2(sc), "systemctl-start-ms")
	b.ReportMetric(float64(start)/float64(sc), "start-ratio")
	b.ReportMetric(float64(load+start)/float64(sc), "load+start-ratio")
	b.ReportMetric(ms2(fcpu), "fleet-cpu-ms")
	b.ReportMetric(ms2(scpu), "systemctl-cpu-ms")
	b.ReportMetric(ms2(idle), "fleet-idle-cpu-ms")
	b.ReportMetric(ms2(units), "units-call-ms")
	rm := s.pick(func(r round) time.Duration { return r.remove })
	b.ReportMetric(ms2(rm), "fleet-remove-ms")
	b.Logf("%d units, %d rounds (medians): fleet load %v + start %v (fleet CPU %v, manager CPU %v); systemctl start %v (systemctl CPU %v, manager CPU %v); start ratio %.2f, load+start ratio %.2f; one Units call %v; fleet idle CPU %v; RemoveUnit of all, one by one, %v",
		n, len(s), load, start, fcpu, mf, sc, scpu, ms, float64(start)/float64(sc), float64(load+start)/float64(sc), units, idle, rm)
}

func ms2(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a process's user+system CPU time so far, from /proc (in clock
// ticks of 10 ms), or 0 if it cannot be read.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces) start at state.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
