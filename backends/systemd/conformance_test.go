package systemd_test

import (
	"testing"

	"github.com/fleet-rebuild/fleet/backends/unitmanagertest"
)

// TestConformance runs the shared UnitManager suite against a real systemd
// user manager, each subtest with a fresh unit directory.
func TestConformance(t *testing.T) {
	um := sharedManager(t)
	unitmanagertest.Run(t, func(t *testing.T) unitmanagertest.Instance {
		m := open(t, um, nil)
		return unitmanagertest.Instance{Manager: m, Settle: func() { settle(m) }}
	})
}
