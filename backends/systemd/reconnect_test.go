package systemd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/systemd"
	"github.com/fleet-rebuild/fleet/backends/systemd/systemdtest"
	"github.com/fleet-rebuild/fleet/core"
)

// Tests of a manager that goes away: each starts its own, since it breaks it,
// and they run in parallel with each other.

func fastReconnect(c *systemd.Config) {
	c.ReconnectMax = 100 * time.Millisecond
	c.ResyncInterval = time.Hour
}

func TestReconnectAfterManagerRestart(t *testing.T) {
	t.Parallel()
	um := systemdtest.New(t, systemdtest.Options{Name: "restart"})
	m := open(t, um, fastReconnect)
	install(t, m, "survivor.service", "[Service]\nExecStart=/bin/sleep 600\n")
	ch := m.Notify(t.Context())
	if err := um.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !notified(ch, 5*time.Second) {
		t.Fatal("no notification after the manager restarted")
	}
	// The new manager still has fleet's runtime link; Units works again once
	// Manager has reconnected, and so do jobs.
	waitUnit(t, m, "survivor.service", state(core.LoadLoaded, core.ActiveInactive, "dead"))
	if err := m.Start(t.Context(), "survivor.service"); err != nil {
		t.Fatalf("Start after reconnect: %v", err)
	}
	waitUnit(t, m, "survivor.service", state(core.LoadLoaded, core.ActiveActive, "running"))
}

func TestReconnectAfterReexec(t *testing.T) {
	t.Parallel()
	um := systemdtest.New(t, systemdtest.Options{Name: "reexec"})
	m := open(t, um, fastReconnect)
	install(t, m, "kept.service", "[Service]\nExecStart=/bin/sleep 600\n")
	if err := m.Start(t.Context(), "kept.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, m, "kept.service", active)
	settle(m)
	before := m.Instance()
	ch := m.Notify(t.Context())
	// daemon-reexec replaces the manager in place: connections drop, units
	// keep running.
	if _, err := um.Systemctl(t.Context(), "daemon-reexec"); err != nil {
		t.Fatal(err)
	}
	if !notified(ch, 5*time.Second) {
		t.Fatal("no notification after daemon-reexec")
	}
	waitUnit(t, m, "kept.service", active)
	// The same process runs on, with its units: the same manager instance.
	if got := m.Instance(); got != before {
		t.Errorf("Instance() = %q after daemon-reexec, want %q unchanged", got, before)
	}
	if err := m.Stop(t.Context(), "kept.service"); err != nil {
		t.Fatalf("Stop after reconnect: %v", err)
	}
	waitUnit(t, m, "kept.service", state(core.LoadLoaded, core.ActiveInactive, "dead"))
}

func TestManagerVanishesMidJob(t *testing.T) {
	t.Parallel()
	um := systemdtest.New(t, systemdtest.Options{Name: "vanish"})
	m := open(t, um, fastReconnect)
	marker := filepath.Join(t.TempDir(), "marker")
	if err := os.WriteFile(marker, []byte("outside fleet's directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install(t, m, "slow.service", "[Service]\nExecStartPre=/bin/sleep 30\nExecStart=/bin/sleep 600\n")
	install(t, m, "other.service", "[Service]\nExecStart=/bin/sleep 600\n")
	if err := m.Start(t.Context(), "slow.service"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitUnit(t, m, "slow.service", func(s core.UnitStatus) bool { return s.ActiveState == core.ActiveActivating })
	if err := um.Crash(); err != nil {
		t.Fatal(err)
	}
	// The watched job ends with the connection, so Settle returns.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := m.Settle(ctx); err != nil {
		t.Fatalf("Settle with the manager gone: %v", err)
	}
	waitErr := func(what string, call func() error) {
		t.Helper()
		for range 250 {
			err := call()
			if errors.Is(err, core.ErrUnavailable) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s with the manager gone: want an error wrapping ErrUnavailable", what)
	}
	waitErr("Units", func() error { _, err := m.Units(t.Context()); return err })
	waitErr("Start", func() error { return m.Start(t.Context(), "other.service") })
	waitErr("WriteUnit", func() error {
		return m.WriteUnit(t.Context(), "new.service", []byte("[Service]\nExecStart=/bin/true\n"))
	})
	if err := m.RemoveUnit(t.Context(), "other.service"); err == nil {
		t.Fatal("RemoveUnit with the manager gone succeeded")
	}
	if _, err := os.Stat(filepath.Join(m.Config().UnitDir, "other.service")); err != nil {
		t.Fatalf("RemoveUnit that could not stop the unit removed its file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.Config().UnitDir, "new.service")); !os.IsNotExist(err) {
		t.Fatalf("a WriteUnit that failed left its file (%v)", err)
	}
	if data, err := os.ReadFile(marker); err != nil || string(data) != "outside fleet's directory\n" {
		t.Fatalf("file outside fleet's directory changed: %q, %v", data, err)
	}
	// The machine comes back: fleet's units are there again, not running.
	if err := um.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, m, "slow.service", state(core.LoadLoaded, core.ActiveInactive, "dead"))
	if err := m.Start(t.Context(), "other.service"); err != nil {
		t.Fatalf("Start after the manager came back: %v", err)
	}
	waitUnit(t, m, "other.service", active)
}

func TestRemoveKeepsFileWhenStopTimesOut(t *testing.T) {
	m := open(t, sharedManager(t), func(c *systemd.Config) { c.JobTimeout = 200 * time.Millisecond })
	install(t, m, "stubborn.service", "[Service]\nExecStart=/bin/sleep 600\nExecStop=/bin/sleep 1\n")
	if err := m.Start(t.Context(), "stubborn.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, m, "stubborn.service", active)
	err := m.RemoveUnit(t.Context(), "stubborn.service")
	if err == nil {
		t.Fatal("RemoveUnit succeeded although its stop job outlasted JobTimeout")
	}
	t.Logf("RemoveUnit: %v", err)
	if _, serr := os.Stat(filepath.Join(m.Config().UnitDir, "stubborn.service")); serr != nil {
		t.Fatalf("file removed although the stop did not finish: %v", serr)
	}
	// Once the stop finished, removing it again works.
	waitUnit(t, m, "stubborn.service", state(core.LoadLoaded, core.ActiveInactive, "dead"))
	if err := m.RemoveUnit(t.Context(), "stubborn.service"); err != nil {
		t.Fatalf("second RemoveUnit: %v", err)
	}
}
