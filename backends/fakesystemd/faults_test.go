package fakesystemd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/core"
)

func TestFaultStartFails(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper, "b.service": sleeper})
	e.m.SetFaults(fakesystemd.Faults{StartFails: map[string]bool{"a.service": true}})
	e.start("a.service")
	e.start("b.service")
	e.expect(0, "a.service", "loaded/activating/start")
	e.expect(time.Second, "a.service", "loaded/failed/failed")
	e.expect(0, "b.service", "loaded/active/running")
}

// TestFaultStartFailsWithRestart checks Restart=on-failure and the start
// limit: five starts within ten seconds, the sixth is refused.
func TestFaultStartFailsWithRestart(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": "[Service]\nExecStart=/bin/sleep 9\nRestart=on-failure\nRestartSec=1\n"})
	e.m.SetFaults(fakesystemd.Faults{StartFails: map[string]bool{"a.service": true}})
	e.start("a.service")
	starts, last := 0, ""
	for range 240 {
		s := e.state("a.service")
		if s != last && s == "loaded/activating/start" {
			starts++
		}
		last = s
		e.clock.Advance(50 * time.Millisecond)
	}
	if last != "loaded/failed/failed" || starts != 5 {
		t.Fatalf("after 12 s of failing starts: state %s after %d starts, want failed after 5", last, starts)
	}
}

func TestFaultHang(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper})
	e.m.SetFaults(fakesystemd.Faults{Hang: map[string]bool{"a.service": true}})
	e.start("a.service")
	e.expect(time.Hour, "a.service", "loaded/activating/start")
	if at, ok := e.m.NextDeadline(); ok {
		t.Fatalf("NextDeadline with a hung job = %v, want none", at)
	}
	e.stop("a.service") // the stop job replaces the start job, and hangs too
	e.expect(time.Hour, "a.service", "loaded/deactivating/stop-sigterm")
	e.m.SetFaults(fakesystemd.Faults{})
	e.expect(time.Hour, "a.service", "loaded/deactivating/stop-sigterm") // queued while hung
	e.start("a.service")                                                 // a new job, queued without the fault
	e.expect(time.Second, "a.service", "loaded/active/running")
}

func TestFaultCrashAt(t *testing.T) {
	e := newEnv(t)
	t0 := e.clock.Now()
	e.install(map[string]string{
		"a.service": sleeper,
		"b.service": sleeper,
		"c.service": "[Service]\nExecStart=/bin/sleep 9\nRestart=always\nRestartSec=2\n",
	})
	e.m.SetFaults(fakesystemd.Faults{CrashAt: map[string]time.Time{
		"a.service": t0.Add(10 * time.Second),
		"b.service": t0.Add(10 * time.Second), // not running then
		"c.service": t0.Add(10 * time.Second),
	}})
	e.start("a.service")
	e.start("c.service")
	if at, ok := e.m.NextDeadline(); !ok || !at.Equal(t0.Add(fakesystemd.DefaultJobDuration)) {
		t.Fatalf("NextDeadline = %v, %v; want the start jobs' end", at, ok)
	}
	e.clock.Advance(time.Second)
	if at, ok := e.m.NextDeadline(); !ok || !at.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("NextDeadline = %v, %v; want the crash at +10s", at, ok)
	}
	e.expect(9*time.Second-time.Millisecond, "a.service", "loaded/active/running")
	e.expect(time.Millisecond, "a.service", "loaded/failed/failed")
	e.expect(0, "c.service", "loaded/activating/auto-restart")
	e.expect(2*time.Second, "c.service", "loaded/activating/start")
	e.expect(time.Second, "c.service", "loaded/active/running") // restarted after the crash: not crashed again
	e.start("b.service")
	e.expect(time.Minute, "b.service", "loaded/active/running")
}

func TestFaultLoadError(t *testing.T) {
	e := newEnv(t)
	e.m.SetFaults(fakesystemd.Faults{LoadError: map[string]bool{"a.service": true}})
	e.install(map[string]string{"a.service": sleeper})
	e.expect(0, "a.service", "error/inactive/dead")
	if err := e.m.Start(t.Context(), "a.service"); !errors.Is(err, fakesystemd.ErrNotLoaded) {
		t.Fatalf("Start of a unit with a load error: %v, want ErrNotLoaded", err)
	}
}

func TestFaultCallError(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper, "b.service": sleeper})
	errBus := errors.New("org.freedesktop.DBus.Error.NoReply")
	e.m.SetFaults(fakesystemd.Faults{CallError: func(op fakesystemd.Op, unit string) error {
		if op == fakesystemd.OpStart && unit == "a.service" || op == fakesystemd.OpReload {
			return errBus
		}
		return nil
	}})
	if err := e.m.Start(t.Context(), "a.service"); !errors.Is(err, errBus) {
		t.Fatalf("Start(a): %v, want the injected error", err)
	}
	if err := e.m.Reload(t.Context()); !errors.Is(err, errBus) {
		t.Fatalf("Reload: %v, want the injected error", err)
	}
	e.start("b.service")
	e.expect(time.Second, "a.service", "loaded/inactive/dead") // the failed call changed nothing
	e.expect(0, "b.service", "loaded/active/running")

	e.m.SetFaults(fakesystemd.Faults{CallError: func(op fakesystemd.Op, unit string) error {
		if op == fakesystemd.OpUnits {
			return core.ErrUnavailable
		}
		return nil
	}})
	if _, err := e.m.Units(t.Context()); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Units: %v, want core.ErrUnavailable", err)
	}
}

func TestStopBehindBack(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper})
	e.start("a.service")
	e.clock.Advance(time.Second)
	e.m.SetFaults(fakesystemd.Faults{CallError: func(op fakesystemd.Op, unit string) error {
		if op == fakesystemd.OpStop {
			return core.ErrUnavailable
		}
		return nil
	}})
	if err := e.m.StopBehindBack("a.service"); err != nil {
		t.Fatal(err)
	}
	e.expect(time.Second, "a.service", "loaded/inactive/dead")
	if err := e.m.StopBehindBack("nope.service"); !errors.Is(err, core.ErrUnitNotFound) {
		t.Fatalf("StopBehindBack of an unknown unit: %v, want core.ErrUnitNotFound", err)
	}
}

func TestCrash(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{
		"a.service": sleeper,
		"b.service": "[Service]\nExecStart=/bin/sleep 9\nRestart=always\n",
		"c.service": sleeper,
	})
	e.start("a.service")
	e.start("b.service")
	e.clock.Advance(time.Second)
	for _, name := range []string{"a.service", "b.service", "c.service"} {
		if err := e.m.Crash(name); err != nil {
			t.Fatalf("Crash(%s): %v", name, err)
		}
	}
	e.expect(0, "a.service", "loaded/failed/failed")
	e.expect(0, "b.service", "loaded/activating/auto-restart")
	e.expect(0, "c.service", "loaded/inactive/dead") // not running: unaffected
	e.expect(time.Second, "b.service", "loaded/active/running")
	if err := e.m.Crash("nope.service"); !errors.Is(err, core.ErrUnitNotFound) {
		t.Fatalf("Crash of an unknown unit: %v, want core.ErrUnitNotFound", err)
	}
}

func TestRestartManager(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{
		"run.service":     sleeper,
		"fail.service":    crasher,
		"boot.service":    "[Service]\nExecStart=/bin/sleep 9\n[Install]\nWantedBy=default.target\n",
		"removed.service": sleeper,
	})
	for _, name := range []string{"run.service", "fail.service", "removed.service"} {
		e.start(name)
	}
	e.clock.Advance(time.Second)
	e.m.SetFaults(fakesystemd.Faults{Hang: map[string]bool{"removed.service": true}})
	if err := e.m.RemoveUnit(t.Context(), "removed.service"); err == nil {
		t.Fatal("RemoveUnit with a hung stop job succeeded, want an error and the file kept")
	}
	if err := e.m.WriteUnit(t.Context(), "new.service", []byte(sleeper)); err != nil {
		t.Fatal(err)
	}
	e.m.SetFaults(fakesystemd.Faults{})
	ch := e.m.Notify(t.Context())

	e.m.Restart()
	select {
	case <-ch:
	default:
		t.Fatal("no notification after Restart")
	}
	e.expect(0, "run.service", "loaded/inactive/dead")
	e.expect(0, "fail.service", "loaded/inactive/dead")
	e.expect(0, "new.service", "loaded/inactive/dead") // loaded without Reload
	e.expect(0, "boot.service", "loaded/activating/start")
	e.expect(time.Second, "boot.service", "loaded/active/running")
	// The unit whose removal hung kept its file: the restarted manager loads it,
	// its stop job is gone, and removing it now succeeds.
	e.expect(0, "removed.service", "loaded/inactive/dead")
	if err := e.m.RemoveUnit(t.Context(), "removed.service"); err != nil {
		t.Fatalf("RemoveUnit after the restart: %v", err)
	}
	e.expect(0, "removed.service", "absent")
}

func TestInvalidNames(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"", "a/b.service", "../x.service", "x\x00.service"} {
		var nameErr *core.NameError
		if err := e.m.WriteUnit(t.Context(), name, []byte(sleeper)); !errors.As(err, &nameErr) {
			t.Errorf("WriteUnit(%q): %v, want a *core.NameError", name, err)
		}
		if err := e.m.Crash(name); !errors.As(err, &nameErr) {
			t.Errorf("Crash(%q): %v, want a *core.NameError", name, err)
		}
	}
	if list := e.statuses(); len(list) != 0 {
		t.Fatalf("Units after refused writes = %v, want none", list)
	}
}

func TestFaultFrozen(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper, "b.service": sleeper})
	e.start("a.service") // its job completes after the thaw
	e.m.SetFaults(fakesystemd.Faults{Frozen: true})
	ctx := t.Context()
	for op, err := range map[string]error{
		"WriteUnit":  e.m.WriteUnit(ctx, "c.service", []byte(sleeper)),
		"RemoveUnit": e.m.RemoveUnit(ctx, "b.service"),
		"Reload":     e.m.Reload(ctx),
		"Start":      e.m.Start(ctx, "b.service"),
		"Stop":       e.m.Stop(ctx, "a.service"),
		"Units":      func() error { _, err := e.m.Units(ctx); return err }(),
	} {
		if !errors.Is(err, core.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a frozen manager = %v, want an error wrapping core.ErrUnavailable and context.DeadlineExceeded", op, err)
		}
	}
	e.clock.Advance(time.Hour)
	if at, ok := e.m.NextDeadline(); ok {
		t.Fatalf("NextDeadline of a frozen manager = %v, want none (nothing progresses)", at)
	}
	if e.m.Step() {
		t.Fatal("Step changed a frozen manager")
	}
	e.m.SetFaults(fakesystemd.Faults{})
	e.expect(0, "a.service", "loaded/active/running")
	e.expect(0, "b.service", "loaded/inactive/dead")
	if got := e.state("c.service"); got != "absent" {
		t.Fatalf("c.service, written while frozen: %s, want absent", got)
	}
}
