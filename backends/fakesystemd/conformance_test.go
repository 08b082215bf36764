package fakesystemd_test

import (
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/backends/unitmanagertest"
)

func TestConformance(t *testing.T) {
	unitmanagertest.Run(t, func(t *testing.T) unitmanagertest.Instance {
		clock := newTestClock()
		m := fakesystemd.New(clock)
		return unitmanagertest.Instance{
			Manager: m,
			Settle:  func() { clock.Advance(50 * time.Millisecond); m.Step() },
		}
	})
}

func TestConformanceReplace(t *testing.T) {
	unitmanagertest.RunReplace(t, func(t *testing.T) unitmanagertest.Instance {
		clock := newTestClock()
		m := fakesystemd.New(clock)
		return unitmanagertest.Instance{
			Manager: m,
			Settle:  func() { clock.Advance(50 * time.Millisecond); m.Step() },
			Replace: m.Restart,
		}
	})
}
