package unitmanagertest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

// Instance is one fresh unit manager under test.
type Instance struct {
	Manager core.UnitManager
	// Settle lets pending jobs progress: on a fake it advances virtual time; on real systemd it sleeps briefly. Tests poll Units() with Settle between polls, at most a bounded number of times.
	Settle func()
	// Reconnect, if set, breaks the Manager's connection to the manager,
	// which stays up; the Manager is to connect again by itself. Nil for a
	// backend without a connection.
	Reconnect func()
	// Replace replaces the manager by a new process, as when systemd is
	// killed with its units and started again. Only RunReplace uses it.
	Replace func()
}

// MaxSettles bounds every wait of the suite: a test polls Units at most
// MaxSettles+1 times, calling Settle between polls, before it fails.
const MaxSettles = 200

// Unit files used by the suite. Each is a real service that a systemd user
// manager runs (Type=simple, Restart=no unless said otherwise).
var (
	// sleeper runs until stopped.
	sleeper = []byte("[Service]\nExecStart=/bin/sleep 3600\n")
	// sleeperB is sleeper with other contents, hence another hash.
	sleeperB = []byte("[Unit]\nDescription=conformance sleeper, second version\n\n[Service]\nExecStart=/bin/sleep 3601\n")
	// crasher exits with status 1 as soon as it starts.
	crasher = []byte("[Service]\nExecStart=/bin/false\n")
	// installable has an [Install] section.
	installable = []byte("[Service]\nExecStart=/bin/sleep 3600\n\n[Install]\nWantedBy=default.target\n")
	// badSetting has no ExecStart= although its Type= needs one: systemd
	// refuses it with LoadState "bad-setting". (An unknown value such as
	// Type=bogus would not do: systemd 252 ignores it with a warning and loads
	// the unit.)
	badSetting = []byte("[Service]\nType=simple\n")
	// toggler is sleeper without a start limit, so that it can be started
	// many times in a row.
	toggler = []byte("[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/sleep 3600\n")
)

// Run runs every conformance test against managers made by newInstance (once
// per subtest). The subtests run in parallel: newInstance must be safe to call
// concurrently, and the tests use distinct unit names, so instances may share
// one systemd manager.
func Run(t *testing.T, newInstance func(t *testing.T) Instance) {
	tests := []struct {
		name string
		fn   func(t *testing.T, inst Instance)
	}{
		{"EmptyManagerListsNothing", testEmpty},
		{"WriteThenReloadLoads", testWriteReload},
		{"RewriteChangesHash", testRewrite},
		{"ReloadAppliesNewContents", testReloadApplies},
		{"UnitsSortedAndOnlyFleets", testSorted},
		{"InstallSectionLoads", testInstall},
		{"BadSettingIsNotLoaded", testBadSetting},
		{"InvalidNamesRejected", testInvalidNames},
		{"NameLengthLimit", testNameLength},
		{"StartRuns", testStart},
		{"StopStops", testStop},
		{"StopInactiveIsNoop", testStopInactive},
		{"FailingUnitFails", testFailing},
		{"RemoveUnitStopsAndForgets", testRemoveRunning},
		{"RemoveUnitResetsFailed", testRemoveFailed},
		{"RepeatedStartStop", testRepeatedStartStop},
		{"NotifyAfterChange", testNotify},
		{"NotifyClosesOnCancel", testNotifyCancel},
		{"InstanceStable", testInstanceStable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inst := newInstance(t)
			if inst.Manager == nil || inst.Settle == nil {
				t.Fatal("newInstance returned an Instance without Manager or Settle")
			}
			tt.fn(t, inst)
		})
	}
}

// describe renders a status for failure messages.
func describe(s core.UnitStatus) string {
	return fmt.Sprintf("%s/%s/%s hash=%s", s.LoadState, s.ActiveState, s.SubState, s.Hash.Short())
}

// units calls Units and fails the test on error.
func units(t *testing.T, inst Instance) []core.UnitStatus {
	t.Helper()
	list, err := inst.Manager.Units(t.Context())
	if err != nil {
		t.Fatalf("Units: %v", err)
	}
	return list
}

// find returns the named unit from one Units call.
func find(t *testing.T, inst Instance, name string) (core.UnitStatus, bool) {
	t.Helper()
	for _, s := range units(t, inst) {
		if s.Name == name {
			return s, true
		}
	}
	return core.UnitStatus{}, false
}

// waitFor polls until the named unit is listed and ok accepts it, and returns
// it. want names the condition in the failure message, which lists every
// distinct state seen while waiting.
func waitFor(t *testing.T, inst Instance, name, want string, ok func(core.UnitStatus) bool) core.UnitStatus {
	t.Helper()
	var seen []string
	for i := 0; ; i++ {
		s, found := find(t, inst, name)
		desc := "not listed"
		if found {
			desc = describe(s)
		}
		if len(seen) == 0 || seen[len(seen)-1] != desc {
			seen = append(seen, desc)
		}
		if found && ok(s) {
			return s
		}
		if i == MaxSettles {
			t.Fatalf("%s: still not %s after %d settles; states seen in order: %s",
				name, want, MaxSettles, strings.Join(seen, " -> "))
		}
		inst.Settle()
	}
}

// waitState waits for the unit to be loaded with the given active and sub states.
func waitState(t *testing.T, inst Instance, name, active, sub string) core.UnitStatus {
	t.Helper()
	want := core.LoadLoaded + "/" + active + "/" + sub
	return waitFor(t, inst, name, want, func(s core.UnitStatus) bool {
		return s.LoadState == core.LoadLoaded && s.ActiveState == active && s.SubState == sub
	})
}

// waitGone waits until Units no longer lists the unit.
func waitGone(t *testing.T, inst Instance, name string) {
	t.Helper()
	for i := 0; ; i++ {
		s, found := find(t, inst, name)
		if !found {
			return
		}
		if i == MaxSettles {
			t.Fatalf("%s: still listed after %d settles, as %s", name, MaxSettles, describe(s))
		}
		inst.Settle()
	}
}

// install writes the unit and reloads the manager, failing the test on error.
func install(t *testing.T, inst Instance, name string, contents []byte) {
	t.Helper()
	ctx := t.Context()
	if err := inst.Manager.WriteUnit(ctx, name, contents); err != nil {
		t.Fatalf("WriteUnit(%s): %v", name, err)
	}
	if err := inst.Manager.Reload(ctx); err != nil {
		t.Fatalf("Reload after writing %s: %v", name, err)
	}
}

// installAndStart installs the unit, starts it and waits until it runs.
func installAndStart(t *testing.T, inst Instance, name string, contents []byte) {
	t.Helper()
	install(t, inst, name, contents)
	start(t, inst.Manager, name)
	waitState(t, inst, name, core.ActiveActive, "running")
}

func start(t *testing.T, m core.UnitManager, name string) {
	t.Helper()
	if err := m.Start(t.Context(), name); err != nil {
		t.Fatalf("Start(%s): %v", name, err)
	}
}

func stop(t *testing.T, m core.UnitManager, name string) {
	t.Helper()
	if err := m.Stop(t.Context(), name); err != nil {
		t.Fatalf("Stop(%s): %v", name, err)
	}
}
