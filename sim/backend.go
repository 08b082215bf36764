package sim

import (
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

// Backend is the registry a simulated cluster runs on.
type Backend struct {
	Name     string
	Registry core.Registry
	// Expire applies lease expiry up to the clock's current time.
	Expire func() error
	// Settle waits until every Notify channel has received the wake-ups of
	// every change made so far (nil when Notify is synchronous).
	Settle func() error
	// Close releases the backend's resources.
	Close func() error
	// Revision, if set, returns a number that changes with every write to
	// the registry (a lease renewal is no write), after applying due expiries:
	// the checker reuses what it read while it has not changed.
	Revision func() int64
}

// BackendFactory makes a fresh backend whose leases expire by clock.
type BackendFactory func(clock core.Clock) (Backend, error)

// MemoryBackend is the in-memory registry.
func MemoryBackend(clock core.Clock) (Backend, error) {
	r := memory.New(clock)
	return Backend{
		Name:     "memory",
		Registry: r,
		Expire:   func() error { r.Expire(); return nil },
		Close:    func() error { return nil },
		Revision: r.Revision,
	}, nil
}
