package sim

import (
	"fmt"
	"sort"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// Converged reports whether the cluster has settled: every wanted unit placed on
// a live machine (or reported unplaceable), and every up machine's systemd
// running exactly its share, in its target states. If not, it says what differs.
func (c *Cluster) Converged() (bool, string) {
	if !c.planned {
		return false, "no leader has planned since the last change"
	}
	s := c.snapshotForCheck()
	if s == nil {
		return false, "registry unreadable"
	}
	placed := map[string][]*core.SchedUnit{}
	where := map[string]string{}
	for _, p := range s.placements {
		r := c.units[p.Unit]
		if r == nil || r.Global || r.TargetState == core.Inactive || p.Hash != r.Hash || p.TargetState != r.TargetState {
			return false, fmt.Sprintf("placement of %s on %s is stale", p.Unit, p.Machine)
		}
		if _, ok := s.machines[p.Machine]; !ok {
			return false, fmt.Sprintf("%s placed on gone machine %s", p.Unit, p.Machine)
		}
		if m := c.byID[p.Machine]; m != nil && !m.up {
			return false, fmt.Sprintf("%s placed on down machine %s", p.Unit, p.Machine)
		}
		placed[p.Machine] = append(placed[p.Machine], &r.SchedUnit)
		where[p.Unit] = p.Machine
	}
	for _, n := range c.unitNames() {
		r := c.units[n]
		if r.Global || r.TargetState == core.Inactive || where[n] != "" {
			continue
		}
		if _, ok := c.unplaceable[n]; !ok {
			return false, fmt.Sprintf("%s is neither placed nor reported unplaceable", n)
		}
	}
	for _, m := range c.machines {
		if !m.up {
			continue
		}
		if _, live := s.machines[m.ID]; !live {
			return false, fmt.Sprintf("machine %s is up but not present", m.ID)
		}
	}
	units := c.machineUnits(s, placed)
	for _, m := range c.machines {
		if !m.up {
			continue
		}
		if ok, why := c.machineConverged(m, units[m.ID]); !ok {
			return false, why
		}
	}
	states, err := c.backend.Registry.UnitStates(c.ctx)
	if err != nil {
		return false, fmt.Sprintf("read unit states: %v", err)
	}
	if ok, why := c.publishedMatch(states, units); !ok {
		return false, why
	}
	return c.currentStatesMatch(s.placements, states, where)
}

// publishedMatch compares the state each up machine's agent published for each
// unit with what its systemd really runs: contents, LOAD, ACTIVE and SUB, and
// the launched marker, which a converged machine holds exactly for its units
// whose target is launched.
func (c *Cluster) publishedMatch(states []core.UnitState, units map[string][]*core.SchedUnit) (bool, string) {
	published := make(map[[2]string]core.UnitState, len(states))
	for _, st := range states {
		if m := c.byID[st.Machine]; m != nil && m.up {
			published[[2]string{st.Machine, st.Unit}] = st
		}
	}
	for _, m := range c.machines {
		if !m.up {
			continue
		}
		actual, err := m.sd.Units(c.ctx)
		if err != nil {
			return false, fmt.Sprintf("%s: list units: %v", m.ID, err)
		}
		launched := map[string]bool{}
		for _, u := range units[m.ID] {
			launched[u.Name] = u.TargetState == core.Launched
		}
		for _, a := range actual {
			k := [2]string{m.ID, a.Name}
			want := core.UnitState{Unit: a.Name, Machine: m.ID, Hash: a.Hash, LoadState: a.LoadState,
				ActiveState: a.ActiveState, SubState: a.SubState, Launched: launched[a.Name]}
			got, ok := published[k]
			if !ok {
				return false, fmt.Sprintf("%s: publishes no state for %s, which runs as %s", m.ID, a.Name, showState(want))
			}
			if got != want {
				return false, fmt.Sprintf("%s: published %s as %s, runs as %s", m.ID, a.Name, showState(got), showState(want))
			}
			delete(published, k)
		}
	}
	keys := make([][2]string, 0, len(published))
	for k := range published {
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		sort.Slice(keys, func(i, j int) bool { return keys[i][0]+" "+keys[i][1] < keys[j][0]+" "+keys[j][1] })
		return false, fmt.Sprintf("%s: publishes a state for %s, which its systemd does not have", keys[0][0], keys[0][1])
	}
	return true, ""
}

func showState(s core.UnitState) string {
	return fmt.Sprintf("%s %s/%s/%s launched=%t", s.Hash.Short(), s.LoadState, s.ActiveState, s.SubState, s.Launched)
}

// currentStatesMatch checks core.CurrentStates (what the API reports) against
// what the machines run:
// once converged, a placed unit's cluster-level state is its target state
// (the machine runs it, or started it and it ended), and a unit not placed
// is inactive.
func (c *Cluster) currentStatesMatch(placements []core.Placement, states []core.UnitState, where map[string]string) (bool, string) {
	current := core.CurrentStates(placements, states)
	for _, n := range c.unitNames() {
		r := c.units[n]
		if r.Global {
			continue
		}
		want := core.Inactive
		if where[n] != "" {
			want = r.TargetState
		}
		if got := current.Of(n); got != want {
			return false, fmt.Sprintf("current state of %s is %s, but its machine runs it as %s", n, got, want)
		}
	}
	return true, ""
}

// machineConverged compares one machine's systemd with the units it should run.
func (c *Cluster) machineConverged(m *Machine, want []*core.SchedUnit) (bool, string) {
	actual, err := m.sd.Units(c.ctx)
	if err != nil {
		return false, fmt.Sprintf("%s: list units: %v", m.ID, err)
	}
	have := make(map[string]core.UnitStatus, len(actual))
	for _, s := range actual {
		have[s.Name] = s
	}
	for _, u := range want {
		s, ok := have[u.Name]
		switch {
		case !ok:
			return false, fmt.Sprintf("%s: %s missing", m.ID, u.Name)
		case s.Hash != u.Hash || s.LoadState != core.LoadLoaded:
			return false, fmt.Sprintf("%s: %s not loaded with contents %s (%s, %s)", m.ID, u.Name, u.Hash.Short(), s.Hash.Short(), s.LoadState)
		case u.TargetState == core.Launched && s.ActiveState != core.ActiveActive && !c.ended(m, u, s):
			return false, fmt.Sprintf("%s: %s is %s/%s, want running or started and ended", m.ID, u.Name, s.ActiveState, s.SubState)
		case s.Running() && u.TargetState == core.Loaded:
			return false, fmt.Sprintf("%s: %s is %s, want stopped", m.ID, u.Name, s.ActiveState)
		}
		delete(have, u.Name)
	}
	if len(have) > 0 {
		var extra []string
		for n := range have {
			extra = append(extra, n)
		}
		sort.Strings(extra)
		return false, fmt.Sprintf("%s: runs units not scheduled there: %v", m.ID, extra)
	}
	return true, ""
}

// ended reports whether launched unit u, reported as s by m's systemd, ran
// and ended legitimately: it is inactive or failed, and m's current fleetd
// started it on m's current systemd instance with its current contents after
// the user last set it launched. fleet starts a launched unit once per
// revision and manager instance; restarting it is systemd's job (Restart=). A
// unit stopped by a restart of systemd did not end legitimately.
func (c *Cluster) ended(m *Machine, u *core.SchedUnit, s core.UnitStatus) bool {
	if s.ActiveState != core.ActiveInactive && s.ActiveState != core.ActiveFailed {
		return false
	}
	st, ok := m.starts.byRun[u.Name]
	return ok && st.hash == u.Hash && st.instance == m.sd.Instance() && st.seq > c.units[u.Name].launchedSeq
}

// RunUntilConverged runs until the cluster converges, checking every interval of
// virtual time, for at most max. It returns the virtual time it took, or an
// error naming what still differs (or the first invariant violation).
func (c *Cluster) RunUntilConverged(max, interval time.Duration) (time.Duration, error) {
	start := c.clock.Now()
	deadline := start.Add(max)
	for {
		ok, why := c.Converged()
		if ok {
			c.tracef("-", "converged after %s", c.clock.Now().Sub(start))
			c.checkUnplaceable()
			return c.clock.Now().Sub(start), c.firstViolation()
		}
		if !c.clock.Now().Before(deadline) {
			c.violate(InvConvergence, "not converged %s after healing: %s", max, why)
			return max, c.firstViolation()
		}
		next := c.clock.Now().Add(interval)
		if next.After(deadline) {
			next = deadline
		}
		if err := c.RunUntil(next, nil); err != nil {
			return c.clock.Now().Sub(start), err
		}
	}
}
