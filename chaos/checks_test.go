package chaos

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterprobe"
)

// layout is where units run, judged from the cgroups: unit, machine name,
// processes.
type layout map[string]map[string][]int

// snapshot reads the processes of every service on every machine.
func (c *cluster) snapshot() (layout, error) {
	l := layout{}
	for _, m := range c.machines {
		svcs, err := clusterprobe.Services(c.cgroup, m.Name)
		if err != nil {
			return nil, err
		}
		for u, pids := range svcs {
			if l[u] == nil {
				l[u] = map[string][]int{}
			}
			l[u][m.Name] = pids
		}
	}
	return l, nil
}

// on returns the machines unit runs on, sorted.
func (l layout) on(unit string) []string {
	return slices.Sorted(maps.Keys(l[unit]))
}

// only returns the machine unit runs on when it runs on exactly one among
// machines other than skip.
func (l layout) only(unit, skip string) (string, bool) {
	var got []string
	for _, m := range l.on(unit) {
		if m != skip {
			got = append(got, m)
		}
	}
	if len(got) != 1 {
		return "", false
	}
	return got[0], true
}

// settled waits until every unit of units runs on exactly one machine (not
// counting skip, a frozen machine whose stale copies fleet lets run on) and
// every global unit on every machine of eligible, as the cgroups show, and
// every unit is still in fleet's registry (none lost). It returns the layout.
func (c *cluster) settled(t *testing.T, skip string, units, globals []string, eligible []machine) layout {
	t.Helper()
	var l layout
	ask := c.machines[0]
	for _, m := range eligible {
		ask = m
	}
	eventually(t, waitLimit, "every unit running once", func() error {
		var err error
		if l, err = c.snapshot(); err != nil {
			return err
		}
		for _, u := range units {
			if _, ok := l.only(u, skip); !ok {
				return fmt.Errorf("%s runs on %v: %w", u, l.on(u), errNotYet)
			}
		}
		for _, g := range globals {
			for _, m := range eligible {
				if l[g][m.Name] == nil {
					return fmt.Errorf("global %s runs on %v, not on %s: %w", g, l.on(g), m.Name, errNotYet)
				}
			}
		}
		files, err := c.unitFiles(ask)
		if err != nil {
			return err
		}
		for _, u := range append(slices.Clone(units), globals...) {
			if _, ok := files[u]; !ok {
				return fmt.Errorf("%s is not in fleet's registry any more (lost)", u)
			}
		}
		return nil
	})
	return l
}

// startCounts reads the start log and fails the test on error.
func startCounts(t *testing.T, log string) map[string][]string {
	t.Helper()
	n, err := clusterprobe.Starts(log)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// overlap is what a watcher saw of one unit running on two machines at once.
type overlap struct {
	total, longest time.Duration
	times          int
	since          time.Time // start of the overlap in progress, if any
}

// watcher samples the cgroups of every machine until stopped and measures,
// for each unit, the time it ran on more than one machine.
type watcher struct {
	mu    sync.Mutex
	seen  map[string]*overlap
	err   error
	stop  chan struct{}
	done  chan struct{}
	polls int
}

// watch starts a watcher of units.
func (c *cluster) watch(units []string) *watcher {
	w := &watcher{seen: map[string]*overlap{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, u := range units {
		w.seen[u] = &overlap{}
	}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			l, err := c.snapshot()
			now := time.Now()
			w.mu.Lock()
			w.polls++
			if err != nil && w.err == nil {
				w.err = err
			}
			for u, o := range w.seen {
				twice := len(l[u]) > 1
				switch {
				case twice && o.since.IsZero():
					o.since = now
				case !twice && !o.since.IsZero():
					d := now.Sub(o.since)
					o.total += d
					o.longest = max(o.longest, d)
					o.times++
					o.since = time.Time{}
				}
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// end stops the watcher and returns what it saw; an overlap still in
// progress fails the test.
func (w *watcher) end(t *testing.T) map[string]overlap {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Errorf("watching the cgroups: %v", w.err)
	}
	out := map[string]overlap{}
	for u, o := range w.seen {
		if !o.since.IsZero() {
			t.Errorf("%s still runs on two machines (since %v)", u, time.Since(o.since).Round(time.Millisecond))
		}
		out[u] = *o
	}
	t.Logf("watcher: %d samples of the cgroups", w.polls)
	return out
}

// steady is what a fault that should move nothing is judged against: the
// processes of every unit once settled, the engine leader, the placements it
// reports and the beacon's starts.
type steady struct {
	before  layout
	lead    machine
	placed  map[string]unitFile
	beacons map[string]int
}

// steadyState waits until units and globals run as they should and records
// them with the leader and its placements.
func (c *cluster) steadyState(t *testing.T, units, globals []string) steady {
	t.Helper()
	s := steady{before: c.settled(t, "", units, globals, c.machines)}
	eventually(t, waitLimit, "one engine leader", func() (err error) { s.lead, err = c.leader(c.machines); return err })
	var err error
	if s.placed, err = c.unitFiles(s.lead); err != nil {
		t.Fatal(err)
	}
	s.beacons = c.beaconStarts(t)
	return s
}

// checkNothingMoved checks, once the cluster has settled again after the
// fault (named by what), that no unit moved or restarted since s: the same
// processes and placements, one start each in log, no new beacon start.
func (c *cluster) checkNothingMoved(t *testing.T, s steady, units, globals []string, log, what string) {
	t.Helper()
	after := c.settled(t, "", units, globals, c.machines)
	c.checkUntouched(t, s.before, after, units, "")
	now, err := c.unitFiles(s.lead)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if now[u].TMachine != s.placed[u].TMachine {
			t.Errorf("%s placed on %s after %s, was %s", u, now[u].TMachine, what, s.placed[u].TMachine)
		}
	}
	checkStarts(t, log, units, func(string) int { return 1 })
	if now := c.beaconStarts(t); !maps.Equal(now, s.beacons) {
		t.Errorf("%s started again: starts by machine %v, were %v", beaconUnit, now, s.beacons)
	}
}
