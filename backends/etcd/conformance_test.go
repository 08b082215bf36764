package etcd

import (
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/registrytest"
)

// TestConformance runs the shared Registry suite on the embedded etcd, with
// leases expiring by a virtual clock.
func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registrytest.Instance {
		reg, clock := newTestRegistry(t)
		return registrytest.Instance{Registry: reg, Advance: func(d time.Duration) {
			clock.Advance(d)
			if err := reg.Expire(t.Context()); err != nil {
				t.Fatalf("Expire after advancing %v: %v", d, err)
			}
		}}
	})
}
