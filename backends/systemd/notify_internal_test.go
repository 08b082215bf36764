package systemd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/fleet-rebuild/fleet/backends/systemd/systemdtest"
)

// TestRelevantSignals checks which signals wake Notify, with the object paths
// a real manager gives fleet's unit and another one. It feeds the signals to
// the filter directly: whether a signal that arrived did not wake anyone can
// only be told by the filter, not by waiting.
func TestRelevantSignals(t *testing.T) {
	um := systemdtest.New(t, systemdtest.Options{Name: "signals"})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	m, err := Open(ctx, Config{Scope: ScopeUser, Socket: um.Socket(), UnitDir: filepath.Join(um.RuntimeDir(), "fleet", "units")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A name with every kind of character that systemd escapes in paths.
	const mine = "my-unit_1:2\\x.service"
	if err := m.WriteUnit(ctx, mine, []byte("[Service]\nExecStart=/bin/sleep 600\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(um.RuntimeDir(), "systemd", "user", "not-fleets.service")
	if err := os.WriteFile(other, []byte("[Service]\nExecStart=/bin/sleep 600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Units(ctx); err != nil { // tracks fleet's units
		t.Fatal(err)
	}
	c, err := m.current()
	if err != nil {
		t.Fatal(err)
	}
	path := func(name string) dbus.ObjectPath {
		var p dbus.ObjectPath
		obj := c.bus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
		if err := obj.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.LoadUnit", 0, name).Store(&p); err != nil {
			t.Fatalf("LoadUnit(%s): %v", name, err)
		}
		return p
	}
	changed := func(p dbus.ObjectPath, iface string) *dbus.Signal {
		return &dbus.Signal{Path: p, Name: propertiesChanged, Body: []any{iface, map[string]dbus.Variant{}, []string{}}}
	}
	minePath, otherPath := path(mine), path("not-fleets.service")
	for _, tc := range []struct {
		what string
		s    *dbus.Signal
		want bool
	}{
		{"fleet's unit changed", changed(minePath, unitInterface), true},
		{"another unit changed", changed(otherPath, unitInterface), false},
		{"fleet's service's own properties", changed(minePath, "org.freedesktop.systemd1.Service"), false},
		{"reload finished", &dbus.Signal{Name: managerReloading, Body: []any{false}}, true},
		{"reload started", &dbus.Signal{Name: managerReloading, Body: []any{true}}, false},
		{"a job ended", &dbus.Signal{Name: "org.freedesktop.systemd1.Manager.JobRemoved", Body: []any{uint32(1), dbus.ObjectPath("/"), mine, "done"}}, false},
	} {
		if got := m.relevant(tc.s); got != tc.want {
			t.Errorf("%s (%s): relevant = %v, want %v", tc.what, tc.s.Path, got, tc.want)
		}
	}
}
