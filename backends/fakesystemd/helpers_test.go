package fakesystemd_test

import (
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/core"
)

// Unit files used by the focused tests.
const (
	sleeper = "[Service]\nExecStart=/bin/sleep 3600\n"
	crasher = "[Service]\nExecStart=/bin/false\n"
)

// env is one fake manager on a manual clock.
type env struct {
	t     *testing.T
	clock *testClock
	m     *fakesystemd.Manager
}

func newEnv(t *testing.T, opts ...fakesystemd.Option) *env {
	clock := newTestClock()
	return &env{t: t, clock: clock, m: fakesystemd.New(clock, opts...)}
}

// install writes and reloads units, failing the test on error.
func (e *env) install(files map[string]string) {
	e.t.Helper()
	for name, contents := range files {
		if err := e.m.WriteUnit(e.t.Context(), name, []byte(contents)); err != nil {
			e.t.Fatalf("WriteUnit(%s): %v", name, err)
		}
	}
	if err := e.m.Reload(e.t.Context()); err != nil {
		e.t.Fatalf("Reload: %v", err)
	}
}

func (e *env) start(name string) {
	e.t.Helper()
	if err := e.m.Start(e.t.Context(), name); err != nil {
		e.t.Fatalf("Start(%s): %v", name, err)
	}
}

func (e *env) stop(name string) {
	e.t.Helper()
	if err := e.m.Stop(e.t.Context(), name); err != nil {
		e.t.Fatalf("Stop(%s): %v", name, err)
	}
}

// state returns "load/active/sub" of a listed unit, or "absent".
func (e *env) state(name string) string {
	e.t.Helper()
	list, err := e.m.Units(e.t.Context())
	if err != nil {
		e.t.Fatalf("Units: %v", err)
	}
	for _, s := range list {
		if s.Name == name {
			return s.LoadState + "/" + s.ActiveState + "/" + s.SubState
		}
	}
	return "absent"
}

// expect checks the unit's state after advancing the clock by d.
func (e *env) expect(d time.Duration, name, want string) {
	e.t.Helper()
	e.clock.Advance(d)
	if got := e.state(name); got != want {
		e.t.Fatalf("%s at +%v: state %s, want %s", name, d, got, want)
	}
}

// statuses returns Units, failing the test on error.
func (e *env) statuses() []core.UnitStatus {
	e.t.Helper()
	list, err := e.m.Units(e.t.Context())
	if err != nil {
		e.t.Fatalf("Units: %v", err)
	}
	return list
}
