package unitmanagertest

import (
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

// RunReplace runs the tests that replace the manager process (Instance.Replace).
// newInstance must return a Manager over a manager of its own, with Replace set.
func RunReplace(t *testing.T, newInstance func(t *testing.T) Instance) {
	t.Run("InstanceChangesWhenManagerReplaced", func(t *testing.T) {
		inst := newInstance(t)
		if inst.Manager == nil || inst.Settle == nil || inst.Replace == nil {
			t.Fatal("newInstance returned an Instance without Manager, Settle or Replace")
		}
		testInstanceReplaced(t, inst)
	})
}

// waitUsable polls Units until it succeeds, as after a reconnect.
func waitUsable(t *testing.T, inst Instance, after string) {
	t.Helper()
	for i := 0; ; i++ {
		_, err := inst.Manager.Units(t.Context())
		if err == nil {
			return
		}
		if i == MaxSettles {
			t.Fatalf("Units still fails %d settles after %s: %v", MaxSettles, after, err)
		}
		inst.Settle()
	}
}

// testInstanceStable: the instance is the same across calls, a daemon-reload
// and a reconnect to the same manager.
func testInstanceStable(t *testing.T, inst Instance) {
	const name = "conf-instance-stable.service"
	installAndStart(t, inst, name, sleeper)
	first := inst.Manager.Instance()
	if first == "" {
		t.Fatal("Instance() is empty on a connected manager")
	}
	units(t, inst)
	if err := inst.Manager.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := inst.Manager.Instance(); got != first {
		t.Errorf("Instance() = %q after Units and Reload, want %q unchanged", got, first)
	}
	if inst.Reconnect == nil {
		return
	}
	inst.Reconnect()
	waitUsable(t, inst, "a reconnect")
	if got := inst.Manager.Instance(); got != first {
		t.Errorf("Instance() = %q after a reconnect to the same manager, want %q unchanged", got, first)
	}
	waitState(t, inst, name, core.ActiveActive, "running")
}

// testInstanceReplaced: a new manager process is a new instance, and runs
// none of the old one's units.
func testInstanceReplaced(t *testing.T, inst Instance) {
	const name = "conf-instance-replaced.service"
	installAndStart(t, inst, name, sleeper)
	before := inst.Manager.Instance()
	inst.Replace()
	waitUsable(t, inst, "the manager was replaced")
	waitState(t, inst, name, core.ActiveInactive, "dead")
	after := inst.Manager.Instance()
	if after == before {
		t.Fatalf("Instance() = %q after the manager was replaced, want a new one", after)
	}
	units(t, inst)
	if got := inst.Manager.Instance(); got != after {
		t.Errorf("Instance() = %q on the same new manager, want %q", got, after)
	}
}
