package memory_test

import (
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/backends/registrytest"
)

func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registrytest.Instance {
		clock := memory.NewManualClock(time.Unix(1_000_000, 0))
		reg := memory.New(clock)
		return registrytest.Instance{Registry: reg, Advance: func(d time.Duration) {
			clock.Advance(d)
			reg.Expire()
		}}
	})
}
