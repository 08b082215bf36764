package fakesystemd_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/core"
)

func TestNewFileIsNotFoundUntilReload(t *testing.T) {
	e := newEnv(t)
	if err := e.m.WriteUnit(t.Context(), "a.service", []byte(sleeper)); err != nil {
		t.Fatal(err)
	}
	if got := e.state("a.service"); got != "not-found/inactive/dead" {
		t.Fatalf("before Reload: %s, want not-found/inactive/dead", got)
	}
	if err := e.m.Start(t.Context(), "a.service"); !errors.Is(err, core.ErrUnitNotFound) {
		t.Fatalf("Start before Reload: %v, want core.ErrUnitNotFound", err)
	}
	if err := e.m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.expect(0, "a.service", "loaded/inactive/dead")
}

func TestJobsTakeVirtualTime(t *testing.T) {
	e := newEnv(t, fakesystemd.WithJobDuration(time.Second))
	e.install(map[string]string{"a.service": sleeper})
	e.start("a.service")
	e.expect(0, "a.service", "loaded/activating/start")
	e.expect(999*time.Millisecond, "a.service", "loaded/activating/start")
	e.expect(time.Millisecond, "a.service", "loaded/active/running")
	e.stop("a.service")
	e.expect(0, "a.service", "loaded/deactivating/stop-sigterm")
	e.expect(time.Second, "a.service", "loaded/inactive/dead")
}

func TestReloadKeepsRunningUnitUntilRestart(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper})
	e.start("a.service")
	e.expect(time.Second, "a.service", "loaded/active/running")
	e.install(map[string]string{"a.service": crasher})
	e.expect(time.Second, "a.service", "loaded/active/running")
	e.stop("a.service")
	e.expect(time.Second, "a.service", "loaded/inactive/dead")
	e.start("a.service")
	e.expect(time.Second, "a.service", "loaded/failed/failed")
}

func TestLoadStates(t *testing.T) {
	cases := []struct{ name, contents, want string }{
		{"sleep.service", sleeper, "loaded"},
		{"bogus-type.service", "[Service]\nType=bogus\nExecStart=/bin/true\n", "loaded"},
		{"no-exec.service", "[Service]\nType=simple\n", "bad-setting"},
		{"empty.service", "", "bad-setting"},
		{"two-execs.service", "[Service]\nExecStart=/bin/true\nExecStart=/bin/true\n", "bad-setting"},
		{"reset-exec.service", "[Service]\nExecStart=/bin/true\nExecStart=\nExecStart=/bin/sleep 1\n", "loaded"},
		{"oneshot-two.service", "[Service]\nType=oneshot\nExecStart=/bin/true\nExecStart=/bin/true\n", "loaded"},
		{"oneshot-always.service", "[Service]\nType=oneshot\nExecStart=/bin/true\nRestart=always\n", "bad-setting"},
		{"stop-only.service", "[Service]\nExecStop=/bin/true\nRemainAfterExit=yes\n", "loaded"},
		{"install.service", "[Service]\nExecStart=/bin/sleep 1\n[Install]\nWantedBy=default.target\n", "loaded"},
		{"plain.target", "[Unit]\nDescription=a target\n", "loaded"},
	}
	e := newEnv(t)
	files := map[string]string{}
	for _, c := range cases {
		files[c.name] = c.contents
	}
	e.install(files)
	for _, c := range cases {
		if got := e.state(c.name); !strings.HasPrefix(got, c.want+"/") {
			t.Errorf("%s: state %s, want LoadState %s", c.name, got, c.want)
		}
	}
	err := e.m.Start(t.Context(), "no-exec.service")
	if !errors.Is(err, fakesystemd.ErrNotLoaded) {
		t.Fatalf("Start of a bad-setting unit: %v, want ErrNotLoaded", err)
	}
}

func TestProgramsAndSubStates(t *testing.T) {
	cases := []struct{ name, contents, want string }{
		{"true.service", "[Service]\nExecStart=/bin/true\n", "loaded/inactive/dead"},
		{"remain.service", "[Service]\nExecStart=/usr/bin/true\nRemainAfterExit=yes\n", "loaded/active/exited"},
		{"oneshot.service", "[Service]\nType=oneshot\nExecStart=/bin/sleep 5\n", "loaded/inactive/dead"},
		{"false.service", "[Service]\nExecStart=-/bin/false --flag\n", "loaded/failed/failed"},
		{"web.socket", "[Socket]\nListenStream=8080\n", "loaded/active/listening"},
		{"tick.timer", "[Timer]\nOnCalendar=daily\n", "loaded/active/waiting"},
		{"all.target", "[Unit]\nDescription=all\n", "loaded/active/active"},
	}
	e := newEnv(t)
	files := map[string]string{}
	for _, c := range cases {
		files[c.name] = c.contents
	}
	e.install(files)
	for _, c := range cases {
		e.start(c.name)
	}
	e.clock.Advance(time.Second)
	for _, c := range cases {
		if got := e.state(c.name); got != c.want {
			t.Errorf("%s: started, state %s, want %s", c.name, got, c.want)
		}
	}
}

func TestStopSemantics(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": crasher, "b.service": sleeper})
	e.start("a.service")
	e.expect(time.Second, "a.service", "loaded/failed/failed")
	e.stop("a.service")
	e.expect(time.Second, "a.service", "loaded/failed/failed") // stays failed until reset
	e.stop("b.service")
	e.expect(0, "b.service", "loaded/inactive/dead")
	if err := e.m.Stop(t.Context(), "nope.service"); !errors.Is(err, core.ErrUnitNotFound) {
		t.Fatalf("Stop of an unknown unit: %v, want core.ErrUnitNotFound", err)
	}
	e.start("a.service") // a failed unit starts afresh
	e.expect(0, "a.service", "loaded/activating/start")
}

func TestStartTemplateFails(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"web@.service": sleeper, "web@1.service": sleeper})
	if err := e.m.Start(t.Context(), "web@.service"); !errors.Is(err, fakesystemd.ErrNotLoaded) {
		t.Fatalf("Start of a template: %v, want ErrNotLoaded", err)
	}
	e.start("web@1.service")
	e.expect(time.Second, "web@1.service", "loaded/active/running")
}

func TestRemoveUnit(t *testing.T) {
	e := newEnv(t)
	if err := e.m.RemoveUnit(t.Context(), "nope.service"); err != nil {
		t.Fatalf("RemoveUnit of a unit without a file: %v, want nil", err)
	}
	e.install(map[string]string{"a.service": sleeper})
	e.start("a.service")
	e.expect(time.Second, "a.service", "loaded/active/running")
	if err := e.m.RemoveUnit(t.Context(), "a.service"); err != nil {
		t.Fatal(err)
	}
	e.expect(0, "a.service", "absent")
	// Written again before its stop job completed, the unit shows it stopping.
	if err := e.m.WriteUnit(t.Context(), "a.service", []byte(sleeper)); err != nil {
		t.Fatal(err)
	}
	e.expect(0, "a.service", "loaded/deactivating/stop-sigterm")
	e.expect(time.Second, "a.service", "loaded/inactive/dead")
}

func TestRemovedUnitIsForgottenOnceStopped(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper})
	e.start("a.service")
	e.clock.Advance(time.Second)
	if err := e.m.RemoveUnit(t.Context(), "a.service"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	e.m.Step()
	// Forgotten: a new file is not-found until Reload, like a unit never seen.
	if err := e.m.WriteUnit(t.Context(), "a.service", []byte(sleeper)); err != nil {
		t.Fatal(err)
	}
	e.expect(0, "a.service", "not-found/inactive/dead")
}

func TestNotifyOnlyOnChange(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper})
	ch := e.m.Notify(t.Context())
	notified := func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	e.statuses()
	if e.m.Step() || notified() {
		t.Fatal("notified with nothing changed")
	}
	e.start("a.service")
	if !notified() {
		t.Fatal("no notification after Start")
	}
	e.clock.Advance(50 * time.Millisecond)
	if e.m.Step() || notified() {
		t.Fatal("notified before the job completed")
	}
	e.clock.Advance(50 * time.Millisecond)
	if !e.m.Step() || !notified() {
		t.Fatal("Step after the job completed: no change reported or no notification")
	}
}

func TestNextDeadline(t *testing.T) {
	e := newEnv(t)
	if at, ok := e.m.NextDeadline(); ok {
		t.Fatalf("NextDeadline of an idle manager = %v, want none", at)
	}
	e.install(map[string]string{"a.service": sleeper})
	start := e.clock.Now()
	e.start("a.service")
	if at, ok := e.m.NextDeadline(); !ok || !at.Equal(start.Add(fakesystemd.DefaultJobDuration)) {
		t.Fatalf("NextDeadline after Start = %v, %v; want %v", at, ok, start.Add(fakesystemd.DefaultJobDuration))
	}
	e.clock.Advance(fakesystemd.DefaultJobDuration)
	if at, ok := e.m.NextDeadline(); ok {
		t.Fatalf("NextDeadline of a running unit = %v, want none", at)
	}
}

func TestClockGoingBackDoesNotUndo(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper})
	e.start("a.service")
	e.expect(time.Second, "a.service", "loaded/active/running")
	e.expect(-time.Hour, "a.service", "loaded/active/running")
}

// TestDeterministic runs one script twice and compares every listing.
func TestDeterministic(t *testing.T) {
	run := func() string {
		e := newEnv(t)
		var out strings.Builder
		files := map[string]string{}
		for i := range 20 {
			files[fmt.Sprintf("u%02d.service", i)] = []string{sleeper, crasher, "[Service]\nExecStart=/bin/false\nRestart=always\n"}[i%3]
		}
		e.install(files)
		for i := range 20 {
			e.start(fmt.Sprintf("u%02d.service", i))
		}
		for range 30 {
			e.clock.Advance(70 * time.Millisecond)
			fmt.Fprintln(&out, e.statuses())
		}
		return out.String()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("two runs of one script differ:\n%s\n----\n%s", a, b)
	}
}

// TestConcurrentUse runs calls from several goroutines; run with -race.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{"a.service": sleeper, "b.service": crasher})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			ch := e.m.Notify(t.Context())
			for i := range 50 {
				name := []string{"a.service", "b.service"}[(g+i)%2]
				_ = e.m.Start(t.Context(), name)
				e.clock.Advance(10 * time.Millisecond)
				e.m.Step()
				_ = e.m.Stop(t.Context(), name)
				if _, err := e.m.Units(t.Context()); err != nil {
					t.Error(err)
				}
				select {
				case <-ch:
				default:
				}
			}
		})
	}
	wg.Wait()
}

func TestRestartSettings(t *testing.T) {
	e := newEnv(t)
	e.install(map[string]string{
		"burst.service":     "[Unit]\nStartLimitBurst=2\n[Service]\nExecStart=/bin/false\nRestart=on-failure\nRestartSec=500ms\n",
		"slow.service":      "[Service]\nExecStart=/bin/false\nRestart=on-failure\nRestartSec=1min 30s\n",
		"nolimit.service":   "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\n",
		"stopped.service":   "[Service]\nExecStart=/bin/false\nRestart=on-failure\nRestartSec=5\n",
		"noretry.service":   "[Service]\nExecStart=/bin/false\nRestart=on-success\n",
		"cleanexit.service": "[Service]\nExecStart=/bin/true\nRestart=on-failure\n",
	})
	for _, name := range []string{"burst.service", "slow.service", "nolimit.service", "stopped.service", "noretry.service", "cleanexit.service"} {
		e.start(name)
	}
	e.expect(100*time.Millisecond, "stopped.service", "loaded/activating/auto-restart")
	e.stop("stopped.service") // cancels the pending restart
	e.expect(0, "stopped.service", "loaded/inactive/dead")
	e.expect(0, "noretry.service", "loaded/failed/failed")
	e.expect(0, "cleanexit.service", "loaded/inactive/dead")
	e.expect(1100*time.Millisecond, "burst.service", "loaded/failed/failed") // two starts, then refused
	e.expect(0, "slow.service", "loaded/activating/auto-restart")
	e.expect(88*time.Second, "slow.service", "loaded/activating/auto-restart")
	e.expect(950*time.Millisecond, "slow.service", "loaded/activating/start")
	if got := e.state("nolimit.service"); !strings.HasPrefix(got, "loaded/activating/") {
		t.Fatalf("nolimit.service after 90 s of restarts: %s, want still restarting", got)
	}
	e.expect(10*time.Second, "stopped.service", "loaded/inactive/dead")
}
