package memory

import (
	"fmt"
	"sync"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

var _ core.Clock = (*ManualClock)(nil)

// ManualClock is a core.Clock that moves only when told to: virtual time for
// tests and the simulator. It is safe for concurrent use.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock that reads start until advanced.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d. Time never goes back: a negative d is a
// programming error and panics.
func (c *ManualClock) Advance(d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("memory: ManualClock.Advance(%v): time cannot go back", d))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
