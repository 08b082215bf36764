package systemd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/systemd"
	"github.com/fleet-rebuild/fleet/backends/systemd/systemdtest"
	"github.com/fleet-rebuild/fleet/core"
)

// One user manager serves the whole package; each test gets a fresh unit
// directory in it and removes its units when it ends. Tests that restart or
// crash a manager start their own.
var shared struct {
	once sync.Once
	um   *systemdtest.UserManager
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.um != nil {
		if err := shared.um.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop shared user manager:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sharedManager returns the package's user manager, starting it on first use.
func sharedManager(t *testing.T) *systemdtest.UserManager {
	t.Helper()
	if err := systemdtest.Check(""); err != nil {
		systemdtest.SkipOrFail(t, err)
	}
	shared.once.Do(func() {
		shared.um, shared.err = systemdtest.Start(context.Background(), systemdtest.Options{Name: "pkg"})
	})
	if shared.err != nil {
		t.Fatalf("start shared user manager: %v", shared.err)
	}
	return shared.um
}

var dirSeq atomic.Int64

// open connects a Manager to um with a fresh unit directory. When the test
// ends it removes every unit left in that directory and closes the Manager.
func open(t *testing.T, um *systemdtest.UserManager, tweak func(*systemd.Config)) *systemd.Manager {
	t.Helper()
	cfg := systemd.Config{
		Scope:   systemd.ScopeUser,
		Socket:  um.Socket(),
		UnitDir: filepath.Join(um.RuntimeDir(), "fleet", fmt.Sprintf("t%d", dirSeq.Add(1))),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := systemd.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { cleanup(t, m) })
	return m
}

// cleanup removes the units a test left behind, so that later tests on the
// shared manager start clean, then closes m.
func cleanup(t *testing.T, m *systemd.Manager) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer m.Close()
	list, err := m.Units(ctx)
	if err != nil {
		return // the manager is gone (a test stopped it); nothing to clean
	}
	for _, s := range list {
		if err := m.RemoveUnit(ctx, s.Name); err != nil {
			t.Errorf("cleanup: RemoveUnit(%s): %v", s.Name, err)
		}
	}
	if len(list) > 0 {
		if err := m.Reload(ctx); err != nil {
			t.Errorf("cleanup: Reload: %v", err)
		}
	}
}

// settle waits for m's queued jobs, then a little for systemd to move on.
func settle(m *systemd.Manager) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.Settle(ctx) // a timeout only means the caller polls again
	time.Sleep(20 * time.Millisecond)
}

// waitUnit polls Units until ok accepts the named unit or 10 s pass.
func waitUnit(t *testing.T, m *systemd.Manager, name string, ok func(core.UnitStatus) bool) core.UnitStatus {
	t.Helper()
	var last core.UnitStatus
	for range 500 {
		list, err := m.Units(t.Context())
		if err == nil {
			for _, s := range list {
				if s.Name == name {
					last = s
					if ok(s) {
						return s
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: condition not met; last seen %+v", name, last)
	return last
}

// active and state are conditions for waitUnit.
func active(s core.UnitStatus) bool { return s.ActiveState == core.ActiveActive }

func state(load, act, sub string) func(core.UnitStatus) bool {
	return func(s core.UnitStatus) bool {
		return s.LoadState == load && s.ActiveState == act && s.SubState == sub
	}
}

// install writes and reloads, failing the test on error.
func install(t *testing.T, m *systemd.Manager, name, contents string) {
	t.Helper()
	if err := m.WriteUnit(t.Context(), name, []byte(contents)); err != nil {
		t.Fatalf("WriteUnit(%s): %v", name, err)
	}
	if err := m.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
}

// notified waits up to d for a value on ch.
func notified(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// waitFile polls until path exists or 10 s pass: how a unit's process tells a
// test that it reached a given point.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for range 500 {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}
