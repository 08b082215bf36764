package sim

import "time"

// Epoch is the virtual time at which every simulation starts.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is the simulator's virtual clock. Only the simulator moves it.
type Clock struct {
	now   time.Time
	meter *progressMeter // see Cluster.OnProgress
}

// Now returns the current virtual time.
func (c *Clock) Now() time.Time { return c.now }

// set moves the clock to t; it never goes back.
func (c *Clock) set(t time.Time) {
	if t.After(c.now) {
		c.now = t
	}
	if c.meter != nil {
		c.meter.tick()
	}
}

// skewed is a machine's view of the clock: the virtual time plus a fixed offset.
type skewed struct {
	c    *Clock
	skew time.Duration
}

func (s skewed) Now() time.Time { return s.c.now.Add(s.skew) }
