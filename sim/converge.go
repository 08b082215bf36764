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
// started it with its current contents after the user last set it launched.
// fleet starts a launched unit once per revision; restarting it is systemd's
// job (Restart=).
func (c *Cluster) ended(m *Machine, u *core.SchedUnit, s core.UnitStatus) bool {
	if s.ActiveState != core.ActiveInactive && s.ActiveState != core.ActiveFailed {
		return false
	}
	st, ok := m.starts.byRun[u.Name]
	return ok && st.hash == u.Hash && st.seq > c.units[u.Name].launchedSeq
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
			return c.clock.Now().Sub(start), nil
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
