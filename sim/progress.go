package sim

import "time"

// Progress is how far a long run has come, for a progress line.
type Progress struct {
	Virtual time.Duration // virtual time reached since the start
	Events  int           // events run so far
	Wall    time.Duration // wall time since the progress was first asked for
}

// progressMeter calls its function about once per wall second while the
// clock moves; it reads the wall clock only every 1024 moves.
type progressMeter struct {
	c     *Cluster
	f     func(Progress)
	n     int
	start time.Time
	last  time.Time
}

func (p *progressMeter) tick() {
	p.n++
	if p.n%1024 != 0 {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < time.Second {
		return
	}
	p.last = now
	p.f(Progress{Virtual: p.c.Elapsed(), Events: p.c.stats.events, Wall: now.Sub(p.start)})
}

// OnProgress calls f about once per wall second while the cluster runs, the
// first time after one second: quiet for short runs. Asking again with f
// already set changes nothing.
func (c *Cluster) OnProgress(f func(Progress)) {
	if c.clock.meter != nil {
		return
	}
	now := time.Now()
	c.clock.meter = &progressMeter{c: c, f: f, start: now, last: now}
}
