package unitmanagertest

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

// Tests of unit files: writing, reloading, hashes, listing and names.

func testEmpty(t *testing.T, inst Instance) {
	if list := units(t, inst); len(list) != 0 {
		t.Fatalf("a fresh manager lists %d units, want none (Units lists only fleet's units): %v", len(list), list)
	}
}

func testWriteReload(t *testing.T, inst Instance) {
	const name = "fleet-conformance-write.service"
	if err := inst.Manager.WriteUnit(t.Context(), name, sleeper); err != nil {
		t.Fatalf("WriteUnit: %v", err)
	}
	// Before Reload the state is not specified, but the file is in fleet's
	// directory, so the unit is listed with the hash of that file.
	s, found := find(t, inst, name)
	if !found {
		t.Fatalf("%s: not listed after WriteUnit, although its file is in fleet's directory", name)
	}
	if want := core.HashBytes(sleeper); s.Hash != want {
		t.Fatalf("%s: hash after WriteUnit = %q, want %q", name, s.Hash, want)
	}
	if err := inst.Manager.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	s = waitFor(t, inst, name, "loaded", func(s core.UnitStatus) bool { return s.LoadState == core.LoadLoaded })
	if s.ActiveState != core.ActiveInactive || s.SubState != "dead" {
		t.Fatalf("%s: after Reload = %s, want loaded/inactive/dead (nothing started it)", name, describe(s))
	}
	if want := core.HashBytes(sleeper); s.Hash != want {
		t.Fatalf("%s: hash after Reload = %q, want %q", name, s.Hash, want)
	}
}

func testRewrite(t *testing.T, inst Instance) {
	const name = "fleet-conformance-rewrite.service"
	hashA, hashB := core.HashBytes(sleeper), core.HashBytes(sleeperB)
	if hashA == hashB {
		t.Fatal("fixture error: both versions have the same hash")
	}
	installAndStart(t, inst, name, sleeper)
	if s, _ := find(t, inst, name); s.Hash != hashA {
		t.Fatalf("%s: hash = %q, want %q", name, s.Hash, hashA)
	}
	install(t, inst, name, sleeperB)
	// A daemon-reload does not stop a running service; the new file applies
	// from its next start.
	s := waitFor(t, inst, name, "listed with the new hash", func(s core.UnitStatus) bool { return s.Hash == hashB })
	if s.LoadState != core.LoadLoaded || s.ActiveState != core.ActiveActive || s.SubState != "running" {
		t.Fatalf("%s: after rewrite and Reload = %s, want loaded/active/running", name, describe(s))
	}
	if n := count(units(t, inst), name); n != 1 {
		t.Fatalf("%s: listed %d times after rewrite, want once", name, n)
	}
}

// testReloadApplies checks that Reload re-reads files of units already
// loaded: a unit rewritten with a bad setting stops being "loaded", and one
// rewritten as a crasher fails at its next start.
func testReloadApplies(t *testing.T, inst Instance) {
	const name = "fleet-conformance-reload.service"
	install(t, inst, name, sleeper)
	waitState(t, inst, name, core.ActiveInactive, "dead")
	if err := inst.Manager.WriteUnit(t.Context(), name, badSetting); err != nil {
		t.Logf("WriteUnit rejected a unit without ExecStart=: %v", err)
	} else if err := inst.Manager.Reload(t.Context()); err != nil {
		t.Logf("Reload rejected a unit without ExecStart=: %v", err)
	} else {
		waitFor(t, inst, name, "not loaded after its file lost ExecStart=", func(s core.UnitStatus) bool {
			return s.LoadState != core.LoadLoaded
		})
	}
	install(t, inst, name, crasher)
	waitFor(t, inst, name, "loaded with the crasher's hash", func(s core.UnitStatus) bool {
		return s.LoadState == core.LoadLoaded && s.Hash == core.HashBytes(crasher)
	})
	start(t, inst.Manager, name)
	waitState(t, inst, name, core.ActiveFailed, "failed")
}

func count(list []core.UnitStatus, name string) int {
	n := 0
	for _, s := range list {
		if s.Name == name {
			n++
		}
	}
	return n
}

func testSorted(t *testing.T, inst Instance) {
	names := []string{
		"fleet-conformance-c.service",
		"fleet-conformance-a.service",
		"fleet-conformance-b@1.service",
		"fleet-conformance-b.service",
	}
	for _, name := range names {
		if err := inst.Manager.WriteUnit(t.Context(), name, sleeper); err != nil {
			t.Fatalf("WriteUnit(%s): %v", name, err)
		}
	}
	if err := inst.Manager.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	want := slices.Sorted(slices.Values(names))
	for _, name := range names {
		waitFor(t, inst, name, "loaded", func(s core.UnitStatus) bool { return s.LoadState == core.LoadLoaded })
	}
	list := units(t, inst)
	got := make([]string, len(list))
	for i, s := range list {
		got[i] = s.Name
		if s.Hash != core.HashBytes(sleeper) {
			t.Errorf("%s: hash = %q, want %q", s.Name, s.Hash, core.HashBytes(sleeper))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Units names = %q, want exactly fleet's units sorted by name: %q", got, want)
	}
}

func testInstall(t *testing.T, inst Instance) {
	const name = "fleet-conformance-install.service"
	install(t, inst, name, installable)
	s := waitFor(t, inst, name, "loaded", func(s core.UnitStatus) bool { return s.LoadState == core.LoadLoaded })
	if s.ActiveState != core.ActiveInactive {
		t.Fatalf("%s: after Reload = %s, want inactive (enabling does not start a unit)", name, describe(s))
	}
	start(t, inst.Manager, name)
	waitState(t, inst, name, core.ActiveActive, "running")
}

// testBadSetting writes a service that systemd refuses to load. A backend may
// reject it early (an error from WriteUnit or Reload); otherwise the unit must
// be listed with a LoadState other than "loaded", and it must not run.
func testBadSetting(t *testing.T, inst Instance) {
	const name = "fleet-conformance-bad.service"
	ctx := t.Context()
	if err := inst.Manager.WriteUnit(ctx, name, badSetting); err != nil {
		t.Logf("WriteUnit rejected a unit without ExecStart=: %v", err)
		return
	}
	if err := inst.Manager.Reload(ctx); err != nil {
		t.Logf("Reload rejected a unit without ExecStart=: %v", err)
		if s, found := find(t, inst, name); found && s.LoadState == core.LoadLoaded {
			t.Fatalf("%s: Reload failed but the unit is listed as %s", name, describe(s))
		}
		return
	}
	s, found := find(t, inst, name)
	if !found {
		t.Fatalf("%s: not listed after Reload, although its file is in fleet's directory", name)
	}
	if s.LoadState == core.LoadLoaded {
		t.Fatalf("%s: a service without ExecStart= is %s; want a LoadState other than %q (systemd says \"bad-setting\")",
			name, describe(s), core.LoadLoaded)
	}
	if err := inst.Manager.Start(ctx, name); err != nil {
		return // systemd refuses to start a unit with a bad setting
	}
	for range 5 {
		inst.Settle()
		if s, _ := find(t, inst, name); s.Running() {
			t.Fatalf("%s: a unit that did not load is running: %s", name, describe(s))
		}
	}
}

// testInvalidNames checks that names which could escape fleet's directory or
// confuse systemd are refused by every call, with an error that names the
// name and says why, and that nothing is written for them.
func testInvalidNames(t *testing.T, inst Instance) {
	const valid = "fleet-conformance-valid.service"
	install(t, inst, valid, sleeper)
	bad := map[string]string{ // name → what its error must say
		"":                                    "empty",
		".":                                   "ends in '.'",
		"..":                                  "ends in '.'",
		".service":                            "nothing before its unit type suffix",
		"../escape.service":                   `'/'`,
		"x/../escape.service":                 `'/'`,
		"a/b.service":                         `'/'`,
		"/abs.service":                        `'/'`,
		"nul\x00byte.service":                 `'\x00'`,
		"new\nline.service":                   `'\n'`,
		"no-suffix":                           "no unit type suffix",
		strings.Repeat("a", 300) + ".service": "longer than",
	}
	ctx := t.Context()
	for name, why := range bad {
		for op, err := range map[string]error{
			"WriteUnit":  inst.Manager.WriteUnit(ctx, name, sleeper),
			"RemoveUnit": inst.Manager.RemoveUnit(ctx, name),
			"Start":      inst.Manager.Start(ctx, name),
			"Stop":       inst.Manager.Stop(ctx, name),
		} {
			var ne *core.NameError
			if !errors.As(err, &ne) || ne.Name != name || !strings.Contains(err.Error(), strconv.Quote(name)) || !strings.Contains(err.Error(), why) {
				t.Errorf("%s(%q) = %v; want a *core.NameError that names the name and says %q", op, name, err, why)
			}
		}
	}
	list := units(t, inst)
	if len(list) != 1 || list[0].Name != valid {
		t.Fatalf("after refused writes Units = %v, want only %s", list, valid)
	}
}

// MaxNameLength is the longest unit name systemd accepts, in bytes (its
// UNIT_NAME_MAX less the terminating NUL). Fleet's own limit,
// core.MaxUnitNameLength, is one byte more.
const MaxNameLength = 255

// testNameLength checks that a name of MaxNameLength bytes works end to end,
// and that one byte more is refused up front with an error that says why.
func testNameLength(t *testing.T, inst Instance) {
	name := func(n int) string {
		const prefix, suffix = "fleet-conformance-", ".service"
		return prefix + strings.Repeat("n", n-len(prefix)-len(suffix)) + suffix
	}
	longest, tooLong := name(MaxNameLength), name(MaxNameLength+1)
	installAndStart(t, inst, longest, sleeper)
	ctx := t.Context()
	for op, err := range map[string]error{
		"WriteUnit":  inst.Manager.WriteUnit(ctx, tooLong, sleeper),
		"Start":      inst.Manager.Start(ctx, tooLong),
		"Stop":       inst.Manager.Stop(ctx, tooLong),
		"RemoveUnit": inst.Manager.RemoveUnit(ctx, tooLong),
	} {
		var ne *core.NameError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), strconv.Itoa(MaxNameLength)) {
			t.Errorf("%s of a %d-byte name = %v; want a *core.NameError that names the limit of %d bytes",
				op, len(tooLong), err, MaxNameLength)
		}
	}
	list := units(t, inst)
	if len(list) != 1 || list[0].Name != longest {
		t.Fatalf("Units = %v, want only the %d-byte unit", list, MaxNameLength)
	}
	if err := inst.Manager.RemoveUnit(ctx, longest); err != nil {
		t.Fatalf("RemoveUnit of the %d-byte unit: %v", MaxNameLength, err)
	}
	waitGone(t, inst, longest)
}
