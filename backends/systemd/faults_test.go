package systemd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/systemd"
	"github.com/fleet-rebuild/fleet/backends/systemd/systemdtest"
	"github.com/fleet-rebuild/fleet/core"
)

// Tests of faults: a hung manager, a dropped connection, and fleetd crashing
// between the steps of writing or removing a unit.

// show returns systemctl --user show -p prop for unit, as "prop=value".
func show(t *testing.T, um *systemdtest.UserManager, unit, prop string) string {
	t.Helper()
	out, err := um.Systemctl(t.Context(), "show", "-p", prop, unit)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// linkDir is where the manager keeps fleet's runtime links.
func linkDir(um *systemdtest.UserManager) string {
	return filepath.Join(um.RuntimeDir(), "systemd", "user")
}

// openShort opens a Manager on um's unit directory dir with a short call
// timeout, trying again while Open finds the (busy) manager unavailable, and
// closes it when the test ends. It leaves units to the test's own manager,
// which is stopped with them.
func openShort(t *testing.T, um *systemdtest.UserManager, dir string, callTimeout time.Duration) *systemd.Manager {
	t.Helper()
	cfg := systemd.Config{Scope: systemd.ScopeUser, Socket: um.Socket(), UnitDir: dir, CallTimeout: callTimeout, ReconnectMax: 100 * time.Millisecond}
	var m *systemd.Manager
	retry(t, "Open", func() (err error) { m, err = systemd.Open(t.Context(), cfg); return err })
	t.Cleanup(func() { m.Close() })
	return m
}

// retry calls f until it succeeds, for at most 60 s, as long as it fails with
// core.ErrUnavailable: how a test waits for a busy manager to answer in time.
func retry(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if !errors.Is(err, core.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeze stops um until the returned thaw is called (at the latest when the
// test ends).
func freeze(t *testing.T, um *systemdtest.UserManager) (thaw func()) {
	t.Helper()
	if err := um.Freeze(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			if err := um.Thaw(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(thaw)
	return thaw
}

func TestFrozenManagerCallsFailUnavailable(t *testing.T) {
	t.Parallel()
	um := systemdtest.New(t, systemdtest.Options{Name: "frozen"})
	setup := open(t, um, nil) // default call timeout: setup never times out
	dir := setup.Config().UnitDir
	install(t, setup, "a.service", "[Service]\nExecStart=/bin/sleep 600\n")
	install(t, setup, "b.service", "[Service]\nExecStart=/bin/sleep 600\n")
	if err := setup.Start(t.Context(), "a.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, setup, "a.service", active)
	const callTimeout = 2 * time.Second
	m := openShort(t, um, dir, callTimeout)
	other := openShort(t, um, filepath.Join(um.RuntimeDir(), "fleet", "other"), callTimeout)
	retry(t, "WriteUnit", func() error {
		return other.WriteUnit(t.Context(), "c.service", []byte("[Service]\nExecStart=/bin/sleep 600\n"))
	})
	retry(t, "RemoveUnit", func() error { return other.RemoveUnit(t.Context(), "c.service") }) // its unlink waits for Reload or Close
	thaw := freeze(t, um)
	// Every call gives up after CallTimeout with an error the agent treats as
	// "unavailable, retry later", as it treats an unreachable etcd. The calls
	// run at once: each is bounded on its own.
	calls := map[string]func(ctx context.Context) error{
		"Units":      func(ctx context.Context) error { _, err := m.Units(ctx); return err },
		"Start":      func(ctx context.Context) error { return m.Start(ctx, "b.service") },
		"Stop":       func(ctx context.Context) error { return m.Stop(ctx, "a.service") },
		"Reload":     func(ctx context.Context) error { return m.Reload(ctx) },
		"RemoveUnit": func(ctx context.Context) error { return m.RemoveUnit(ctx, "a.service") },
		"WriteUnit": func(ctx context.Context) error {
			return m.WriteUnit(ctx, "new.service", []byte("[Service]\nExecStart=/bin/true\n"))
		},
		"Open": func(ctx context.Context) error {
			m2, err := systemd.Open(ctx, systemd.Config{Scope: systemd.ScopeUser, Socket: um.Socket(), UnitDir: dir, CallTimeout: callTimeout})
			if err == nil {
				m2.Close()
			}
			return err
		},
		"Close": func(context.Context) error { return other.Close() },
	}
	type result struct {
		op   string
		err  error
		took time.Duration
	}
	results := make(chan result, len(calls))
	for op, call := range calls {
		go func() {
			t0 := time.Now()
			err := call(context.Background())
			results <- result{op, err, time.Since(t0)}
		}()
	}
	bound := 10 * callTimeout
	timeout := time.After(bound + time.Second)
	for range calls {
		select {
		case r := <-results:
			if r.took > bound {
				t.Errorf("%s on a frozen manager took %v, want at most %v", r.op, r.took, bound)
			}
			if !errors.Is(r.err, core.ErrUnavailable) {
				t.Errorf("%s on a frozen manager = %v, want an error wrapping core.ErrUnavailable", r.op, r.err)
			}
		case <-timeout:
			thaw() // lets the blocked calls return
			t.Fatalf("calls on a frozen manager still blocked after %v", bound)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a.service")); err != nil {
		t.Errorf("RemoveUnit that could not stop the unit removed its file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.service")); !os.IsNotExist(err) {
		t.Errorf("WriteUnit that could not link left its file (%v)", err)
	}
	// Thawed, the manager answers again.
	thaw()
	waitUnit(t, m, "a.service", active)
	retry(t, "Start after thaw", func() error { return m.Start(t.Context(), "b.service") })
	waitUnit(t, m, "b.service", active)
}

func TestConnectionDropsWhileManagerStaysUp(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, fastReconnect)
	install(t, m, "steady.service", "[Service]\nExecStart=/bin/sleep 600\n")
	install(t, m, "later.service", "[Service]\nExecStart=/bin/sleep 600\n")
	if err := m.Start(t.Context(), "steady.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, m, "steady.service", active)
	pid := show(t, um, "steady.service", "MainPID")
	ch := m.Notify(t.Context())
	systemd.DropConnection(m)
	if !notified(ch, 5*time.Second) {
		t.Fatal("no notification after the connection dropped")
	}
	// Manager reconnects by itself; the unit never stopped.
	waitUnit(t, m, "steady.service", active)
	if got := show(t, um, "steady.service", "MainPID"); got != pid {
		t.Errorf("steady.service %s after the connection dropped, was %s: the unit restarted", got, pid)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := m.Start(t.Context(), "later.service")
		if err == nil {
			break
		}
		if !errors.Is(err, core.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Start after the connection dropped: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitUnit(t, m, "later.service", active)
	if err := m.Stop(t.Context(), "steady.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, m, "steady.service", state(core.LoadLoaded, core.ActiveInactive, "dead"))
}

func TestCrashBetweenWriteAndReload(t *testing.T) {
	um := sharedManager(t)
	first := open(t, um, nil)
	dir := first.Config().UnitDir
	install(t, first, "upd.service", "[Unit]\nDescription=one\n[Service]\nExecStart=/bin/sleep 600\n")
	if err := first.Start(t.Context(), "upd.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, first, "upd.service", active)
	two := []byte("[Unit]\nDescription=two\n[Service]\nExecStart=/bin/sleep 601\n")
	if err := first.WriteUnit(t.Context(), "upd.service", two); err != nil {
		t.Fatal(err)
	}
	// fleetd dies before its Reload.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := open(t, um, func(c *systemd.Config) { c.UnitDir = dir })
	s := waitUnit(t, second, "upd.service", active)
	if s.Hash != core.HashBytes(two) {
		t.Fatalf("hash after reopening = %s, want that of the second version", s.Hash)
	}
	if got := show(t, um, "upd.service", "NeedDaemonReload"); got != "NeedDaemonReload=no" {
		t.Errorf("after Open: %s; systemd holds the old definition under the new hash", got)
	}
	if got := show(t, um, "upd.service", "Description"); got != "Description=two" {
		t.Errorf("after Open: %s, want Description=two", got)
	}
}

func TestUnitsReloadsAFileChangedBehindItsBack(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, nil)
	install(t, m, "edited.service", "[Unit]\nDescription=one\n[Service]\nExecStart=/bin/sleep 600\n")
	// A running unit: systemd keeps it loaded (an inactive one it may unload,
	// and load again from the file when asked).
	if err := m.Start(t.Context(), "edited.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, m, "edited.service", active)
	two := []byte("[Unit]\nDescription=two\n[Service]\nExecStart=/bin/sleep 601\n")
	if err := os.WriteFile(filepath.Join(m.Config().UnitDir, "edited.service"), two, 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := m.Units(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Hash != core.HashBytes(two) || !list[0].Running() {
		t.Fatalf("Units = %+v, want edited.service running, with the hash of its new file", list)
	}
	if got := show(t, um, "edited.service", "NeedDaemonReload"); got != "NeedDaemonReload=no" {
		t.Errorf("after Units: %s; Units reported a hash that systemd has not loaded", got)
	}
	if got := show(t, um, "edited.service", "Description"); got != "Description=two" {
		t.Errorf("after Units: %s, want Description=two", got)
	}
}

func TestCrashBetweenRemoveAndReload(t *testing.T) {
	um := sharedManager(t)
	first := open(t, um, nil)
	dir := first.Config().UnitDir
	install(t, first, "plain.service", "[Service]\nExecStart=/bin/sleep 600\n")
	install(t, first, "wanted.service", "[Service]\nExecStart=/bin/sleep 600\n\n[Install]\nWantedBy=default.target\n")
	install(t, first, "kept.service", "[Service]\nExecStart=/bin/sleep 600\n")
	for _, n := range []string{"plain.service", "wanted.service"} {
		if err := first.RemoveUnit(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	// A temporary file left by a write that was cut short.
	tmp := filepath.Join(dir, ".fleet-12345.tmp")
	if err := os.WriteFile(tmp, []byte("half a unit"), 0o644); err != nil {
		t.Fatal(err)
	}
	// fleetd dies before its Reload (and its Close): first is abandoned.
	links := []string{
		filepath.Join(linkDir(um), "plain.service"),
		filepath.Join(linkDir(um), "wanted.service"),
		filepath.Join(linkDir(um), "default.target.wants", "wanted.service"),
	}
	for _, p := range links {
		if _, err := os.Lstat(p); err != nil {
			t.Fatalf("fixture: %v", err)
		}
	}
	second := open(t, um, func(c *systemd.Config) { c.UnitDir = dir })
	for _, p := range links {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("dangling link %s still there after Open (%v)", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(linkDir(um), "kept.service")); err != nil {
		t.Errorf("link of a unit with a file was removed: %v", err)
	}
	if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there after Open (%v)", err)
	}
	list, err := second.Units(t.Context())
	if err != nil || len(list) != 1 || list[0].Name != "kept.service" {
		t.Fatalf("Units after reopening = %+v, %v; want kept.service only", list, err)
	}
}

func TestReloadGoesOnWhenAnUnlinkKeepsFailing(t *testing.T) {
	um := sharedManager(t)
	first := open(t, um, nil)
	dir := first.Config().UnitDir
	// A link fleet cannot undo: its name is valid to fleet but not a unit
	// type this systemd knows, so disabling it always fails. Open finds it
	// dangling and queues it.
	bad := filepath.Join(linkDir(um), "stuck.snapshot")
	if err := os.MkdirAll(linkDir(um), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "stuck.snapshot"), bad); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(bad); err != nil {
			t.Error(err)
		}
	})
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	m := open(t, um, func(c *systemd.Config) { c.UnitDir = dir })
	for round := range 3 {
		name := fmt.Sprintf("work-%d.service", round)
		install(t, m, name, "[Service]\nExecStart=/bin/sleep 600\n") // fails the test if Reload does
		waitUnit(t, m, name, state(core.LoadLoaded, core.ActiveInactive, "dead"))
		if err := m.RemoveUnit(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		if err := m.Reload(t.Context()); err != nil {
			t.Fatalf("round %d: Reload with one link that cannot be undone: %v", round, err)
		}
		if _, err := os.Lstat(filepath.Join(linkDir(um), name)); !os.IsNotExist(err) {
			t.Errorf("round %d: link of removed %s still there (%v)", round, name, err)
		}
	}
}

// TestFrozenManagerWithFullSocket checks that calls stay bounded once a
// frozen manager has stopped reading, so that fleet's writes fill the socket:
// writing to it blocks, and the call timeout must cover that too.
func TestFrozenManagerWithFullSocket(t *testing.T) {
	t.Parallel()
	um := systemdtest.New(t, systemdtest.Options{Name: "fullsock"})
	const callTimeout = 2 * time.Second
	m := openShort(t, um, filepath.Join(um.RuntimeDir(), "fleet", "units"), callTimeout)
	// Files with long names make every Units call a large message.
	for i := range 300 {
		name := fmt.Sprintf("%0240d.service", i)
		if err := os.WriteFile(filepath.Join(m.Config().UnitDir, name), []byte("[Service]\nExecStart=/bin/sleep 600\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	retry(t, "Units", func() error { _, err := m.Units(t.Context()); return err })
	thaw := freeze(t, um)
	bound := 10 * callTimeout
	for i := range 12 { // about 1 MB, more than a socket buffers
		done := make(chan error, 1)
		go func() { _, err := m.Units(context.Background()); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, core.ErrUnavailable) {
				t.Fatalf("call %d: Units on a frozen manager = %v, want an error wrapping core.ErrUnavailable", i, err)
			}
		case <-time.After(bound):
			thaw() // lets the blocked call return
			t.Fatalf("call %d: Units on a frozen manager still blocked after %v", i, bound)
		}
	}
	thaw()
	// The manager answers again, on the same connection or a new one.
	retry(t, "Units after thaw", func() error { _, err := m.Units(t.Context()); return err })
}
