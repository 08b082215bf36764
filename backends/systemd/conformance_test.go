package systemd_test

import (
	"testing"

	"github.com/fleet-rebuild/fleet/backends/systemd"
	"github.com/fleet-rebuild/fleet/backends/systemd/systemdtest"
	"github.com/fleet-rebuild/fleet/backends/unitmanagertest"
)

// TestConformance runs the shared UnitManager suite against a real systemd
// user manager, each subtest with a fresh unit directory.
func TestConformance(t *testing.T) {
	um := sharedManager(t)
	unitmanagertest.Run(t, func(t *testing.T) unitmanagertest.Instance {
		m := open(t, um, nil)
		return unitmanagertest.Instance{
			Manager:   m,
			Settle:    func() { settle(m) },
			Reconnect: func() { systemd.DropConnection(m) },
		}
	})
}

// TestConformanceReplace runs the suite's tests that replace the manager, on
// a user manager of its own.
func TestConformanceReplace(t *testing.T) {
	t.Parallel()
	um := systemdtest.New(t, systemdtest.Options{Name: "replace"})
	unitmanagertest.RunReplace(t, func(t *testing.T) unitmanagertest.Instance {
		m := open(t, um, fastReconnect)
		return unitmanagertest.Instance{
			Manager: m,
			Settle:  func() { settle(m) },
			Replace: func() {
				if err := um.Restart(t.Context()); err != nil {
					t.Fatalf("restart the user manager: %v", err)
				}
			},
		}
	})
}
