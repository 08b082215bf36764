package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/fleet-rebuild/fleet/core"
)

// Violation is a broken invariant, with where and when it broke.
type Violation struct {
	Invariant string
	At        string // virtual time since start
	Detail    string
}

func (v Violation) Error() string {
	return fmt.Sprintf("invariant %s broken at %s: %s", v.Invariant, v.At, v.Detail)
}

// The invariants of DESIGN.md.
const (
	InvLeasing     = "leasing"
	InvPlacement   = "placement"
	InvConstraints = "constraints"
	InvSingle      = "single-placement"
	InvFailover    = "failover"
	InvConvergence = "convergence"
	InvNothingLost = "nothing-lost"
	// InvReading: the checker reads every unit's [X-Fleet] as core does.
	InvReading = "x-fleet-reading"
)

func (c *Cluster) violate(inv, format string, args ...any) {
	v := Violation{Invariant: inv, At: c.Elapsed().String(), Detail: fmt.Sprintf(format, args...)}
	c.violations = append(c.violations, v)
	c.tracef("-", "VIOLATION %s", v.Error())
}

// Violations lists every broken invariant so far.
func (c *Cluster) Violations() []Violation { return c.violations }

func (c *Cluster) firstViolation() error {
	if len(c.violations) == 0 {
		return nil
	}
	v := c.violations[0]
	return fmt.Errorf("seed %d: %w", c.cfg.Seed, v)
}

// leasing tracks engine epochs for the leasing invariant.
type leasing struct {
	current  core.Fence
	owner    map[int64]string
	accepted int
	// ordinal numbers the epochs granted 1, 2, 3...: the trace shows these,
	// the same on every backend (each numbers its epochs its own way).
	ordinal map[int64]int
}

// epochOrdinal is the number of f's epoch among the epochs granted so far, or
// 0 for one the checker never saw granted.
func (l *leasing) epochOrdinal(epoch int64) int { return l.ordinal[epoch] }

// onAcquire checks that epochs only grow and belong to one engine each, and
// proves fencing: when the epoch changes, a write with the previous fence must be
// rejected with core.ErrStaleFence.
func (c *Cluster) onAcquire(f core.Fence) {
	l := &c.leasing
	if l.owner == nil {
		l.owner = map[int64]string{}
	}
	if o, ok := l.owner[f.Epoch]; ok && o != f.Engine {
		c.violate(InvLeasing, "epoch %d granted to %s and to %s", f.Epoch, o, f.Engine)
	}
	l.owner[f.Epoch] = f.Engine
	switch {
	case f.Epoch < l.current.Epoch:
		c.violate(InvLeasing, "%s granted epoch %d after epoch %d", f.Engine, f.Epoch, l.current.Epoch)
	case f.Epoch > l.current.Epoch:
		old := l.current
		l.current = f
		if l.ordinal == nil {
			l.ordinal = map[int64]int{}
		}
		l.ordinal[f.Epoch] = len(l.ordinal) + 1
		if old != (core.Fence{}) {
			c.tracef(f.Engine, "leadership: epoch %d (was %s at %d)", l.ordinal[f.Epoch], old.Engine, l.ordinal[old.Epoch])
			probe := []core.ScheduleOp{{Kind: core.OpUnplace, Placement: core.Placement{Unit: "fence-probe.service", Machine: "fence-probe"}}}
			if _, err := c.backend.Registry.ApplySchedule(c.ctx, old, probe); !errors.Is(err, core.ErrStaleFence) {
				c.violate(InvLeasing, "write with deposed fence %+v returned %v, want ErrStaleFence", old, err)
			}
		} else {
			c.tracef(f.Engine, "leadership: epoch %d", l.ordinal[f.Epoch])
		}
	}
}

// onWrite checks that an accepted schedule write carried the current fence.
func (c *Cluster) onWrite(f core.Fence, err error) {
	if err != nil {
		return
	}
	c.leasing.accepted++
	if f != c.leasing.current {
		c.violate(InvLeasing, "write with fence %+v accepted while the current fence is %+v", f, c.leasing.current)
	}
}

// checkSnapshot is the registry's state read by the checker itself.
type checkSnapshot struct {
	machines   map[string]core.MachineState
	ids        []string
	placements []core.Placement
}

// snapshotForCheck reads the live machines and the placements, or returns the
// last snapshot read if the registry's revision has not changed since. The
// snapshot is shared: its readers never change it.
func (c *Cluster) snapshotForCheck() *checkSnapshot {
	var rev int64
	if c.backend.Revision != nil {
		rev = c.backend.Revision()
		if c.lastRead.snap != nil && c.lastRead.rev == rev {
			return c.lastRead.snap
		}
	}
	s := c.readForCheck()
	if c.backend.Revision != nil && s != nil {
		c.lastRead = readSnapshot{snap: s, rev: rev}
	}
	return s
}

// readSnapshot is a checker's snapshot and the registry revision it was read at.
type readSnapshot struct {
	snap *checkSnapshot
	rev  int64
}

func (c *Cluster) readForCheck() *checkSnapshot {
	ms, err := c.backend.Registry.Machines(c.ctx)
	if err != nil {
		c.tracef("-", "checker: read machines: %v", err)
		return nil
	}
	ps, err := c.backend.Registry.Placements(c.ctx)
	if err != nil {
		c.tracef("-", "checker: read placements: %v", err)
		return nil
	}
	s := &checkSnapshot{machines: make(map[string]core.MachineState, len(ms)), placements: ps}
	for _, m := range ms {
		s.machines[m.ID] = m
		s.ids = append(s.ids, m.ID)
	}
	return s
}

// checkedSchedule is the last schedule checkSchedule found sound, and the
// version of the submitted units it was checked against.
type checkedSchedule struct {
	snap  *checkSnapshot
	units uint64
}

// same reports whether s and the units are what was checked.
func (k checkedSchedule) same(s *checkSnapshot, units uint64) bool {
	if k.snap == s && k.units == units {
		return true
	}
	if k.snap == nil || k.units != units || !slices.Equal(k.snap.placements, s.placements) || !slices.Equal(k.snap.ids, s.ids) {
		return false
	}
	for _, id := range s.ids {
		a, b := k.snap.machines[id], s.machines[id]
		if a.PublicIP != b.PublicIP || a.Capabilities != b.Capabilities || a.Version != b.Version || !maps.Equal(a.Metadata, b.Metadata) {
			return false
		}
	}
	return true
}

// afterLeaderPass checks the invariants that a leader's pass must leave true.
// A pass paused before its write (PauseEngineWrite) planned from a snapshot
// the cluster has left meanwhile: its decisions are checked against that
// snapshot, but the schedule it leaves waits for the next pass.
func (c *Cluster) afterLeaderPass(m *Machine, res core.EngineResult, before *checkSnapshot, paused bool) {
	c.stats.decisions += len(res.Decisions)
	now := make(map[string]string, len(res.Unplaceable))
	for _, u := range res.Unplaceable {
		now[u.Unit] = u.Reason
		if c.unplaceable[u.Unit] != u.Reason {
			c.tracef(m.ID, "engine: %s", u)
		}
	}
	c.unplaceable = now
	c.planned = !paused
	for _, d := range res.Decisions {
		if d.Kind == core.Reschedule && d.Cause == core.CauseMachineGone {
			lat := c.clock.Now().Sub(c.expiredAt[d.From])
			if _, ok := c.expiredAt[d.From]; !ok {
				lat = 0
			}
			c.failovers = append(c.failovers, Failover{Unit: d.Unit, From: d.From, To: d.To, Latency: lat})
		}
	}
	after := c.snapshotForCheck()
	if after == nil {
		return
	}
	if !paused {
		c.checkSchedule(after)
		if before != nil && len(now) > 0 {
			c.checkUnplaceableIn(seenBoth(before, after), now, " by a leader's pass")
		}
	}
	if before != nil && len(res.Decisions) > 0 {
		c.checkLeastLoaded(before, res.Decisions)
	}
	if len(res.Decisions) > 0 {
		c.checkNothingLost()
	}
}

// seenBoth is the schedule of after on the machines that before saw too: the
// machines a pass that read before could use and that are still there.
func seenBoth(before, after *checkSnapshot) *checkSnapshot {
	s := &checkSnapshot{machines: map[string]core.MachineState{}, placements: after.placements}
	for _, id := range after.ids {
		if m, ok := before.machines[id]; ok {
			s.machines[id] = m
			s.ids = append(s.ids, id)
		}
	}
	return s
}

// machineUnits builds, for each live machine, the units that run there: placed
// non-global units and eligible globals.
func (c *Cluster) machineUnits(s *checkSnapshot, placed map[string][]*core.SchedUnit) map[string][]*core.SchedUnit {
	var globals []*core.SchedUnit
	for _, r := range c.units {
		if r.Global {
			globals = append(globals, &r.SchedUnit)
		}
	}
	sort.Slice(globals, func(i, j int) bool { return globals[i].Name < globals[j].Name })
	out := make(map[string][]*core.SchedUnit, len(s.ids))
	for _, id := range s.ids {
		p := placed[id]
		sort.Slice(p, func(i, j int) bool { return p[i].Name < p[j].Name })
		all := append([]*core.SchedUnit(nil), p...)
		if len(globals) > 0 {
			all = append(all, eligibleGlobals(s.machines[id], p, globals)...)
		}
		out[id] = all
	}
	return out
}

func (c *Cluster) unitNames() []string {
	names := make([]string, 0, len(c.units))
	for n := range c.units {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkSchedule checks single placement, failover and constraints on the
// schedule a leader's pass left. Its verdict depends only on the placements,
// the live machines and the submitted units, so a schedule found sound is not
// checked again until one of them changed.
func (c *Cluster) checkSchedule(s *checkSnapshot) {
	if c.checked.same(s, c.unitsVersion) {
		return
	}
	violations := len(c.violations)
	defer func() {
		if len(c.violations) == violations {
			c.checked = checkedSchedule{snap: s, units: c.unitsVersion}
		}
	}()
	seen := map[string]string{}
	placed := map[string][]*core.SchedUnit{}
	for _, p := range s.placements {
		if other, dup := seen[p.Unit]; dup {
			c.violate(InvSingle, "%s is placed on %s and %s", p.Unit, other, p.Machine)
		}
		seen[p.Unit] = p.Machine
		r := c.units[p.Unit]
		if _, live := s.machines[p.Machine]; !live {
			c.violate(InvFailover, "%s is still placed on %s, which is gone, after a leader pass", p.Unit, p.Machine)
			continue
		}
		if r == nil || r.TargetState == core.Inactive || r.Global {
			c.violate(InvConstraints, "placement of %s on %s outlived its unit's need to run", p.Unit, p.Machine)
			continue
		}
		placed[p.Machine] = append(placed[p.Machine], &r.SchedUnit)
	}
	byMachine := c.machineUnits(s, placed)
	for _, id := range s.ids {
		m, units := s.machines[id], byMachine[id]
		for _, u := range units {
			if why := couldTake(u, m, units, c.replacesUnit); why != "" && !u.Global {
				c.violate(InvConstraints, "%s on %s: %s", u.Name, id, why)
			}
		}
	}
}

// checkLeastLoaded replays a leader's decisions on the schedule it read and
// checks that each placement chose a least-loaded eligible machine, ties by ID.
func (c *Cluster) checkLeastLoaded(s *checkSnapshot, ds []core.Decision) {
	placed := map[string][]*core.SchedUnit{}
	moved := map[[2]string]bool{}
	for _, d := range ds {
		if (d.Kind == core.Unschedule || d.Kind == core.Reschedule) && !d.Displaced() {
			moved[[2]string{d.Unit, d.From}] = true
		}
	}
	for _, p := range s.placements {
		if r := c.units[p.Unit]; r != nil && !moved[[2]string{p.Unit, p.Machine}] && !r.Global && r.TargetState != core.Inactive {
			if _, live := s.machines[p.Machine]; live {
				placed[p.Machine] = append(placed[p.Machine], &r.SchedUnit)
			}
		}
	}
	units := c.machineUnits(s, placed)
	remove := func(id, name string) {
		us := units[id]
		for i, v := range us {
			if v.Name == name {
				units[id] = append(us[:i:i], us[i+1:]...)
				return
			}
		}
	}
	every := 1
	if n := len(ds) * len(s.ids); n > c.cfg.CheckPlacementLimit {
		every = n/c.cfg.CheckPlacementLimit + 1
	}
	for i, d := range ds {
		replaced := d.Displaced()
		if replaced && (d.Kind == core.Unschedule || d.Kind == core.Reschedule) {
			remove(d.From, d.Unit)
		}
		if d.Kind != core.Schedule && d.Kind != core.Reschedule {
			continue
		}
		r := c.units[d.Unit]
		if r == nil {
			c.violate(InvPlacement, "%s: unit unknown to the simulator", d)
			continue
		}
		if i%every == 0 {
			exclude := ""
			if replaced {
				exclude = d.From
			}
			c.checkChoice(s, units, &r.SchedUnit, d, exclude)
		}
		units[d.To] = append(units[d.To], &r.SchedUnit)
	}
}

// checkChoice checks one placement decision against every machine: the
// least-loaded machine that could take the unit, ties by ID. A machine no less
// loaded than the best so far cannot be it, so whether it could take the unit
// is not asked.
func (c *Cluster) checkChoice(s *checkSnapshot, units map[string][]*core.SchedUnit, u *core.SchedUnit, d core.Decision, exclude string) {
	best, bestLoad := "", 0
	for _, id := range s.ids {
		l := len(units[id])
		if id == exclude || (best != "" && l >= bestLoad) || couldTake(u, s.machines[id], units[id], c.replacesUnit) != "" {
			continue
		}
		best, bestLoad = id, l
	}
	if best != d.To {
		c.violate(InvPlacement, "%s: least-loaded eligible machine is %q (load %d), chosen %s has load %d", d, best, bestLoad, d.To, len(units[d.To]))
	}
}

// checkNothingLost checks that every unit the simulator submitted and did not
// destroy is still stored, with its contents and target state.
func (c *Cluster) checkNothingLost() {
	stored, err := c.backend.Registry.Units(c.ctx)
	if err != nil {
		c.tracef("-", "checker: read units: %v", err)
		return
	}
	have := make(map[string]core.Unit, len(stored))
	for _, u := range stored {
		have[u.Name] = u
	}
	for _, n := range c.unitNames() {
		r := c.units[n]
		u, ok := have[n]
		switch {
		case !ok:
			c.violate(InvNothingLost, "%s was submitted and never destroyed but is gone", n)
		case u.Hash != r.Hash || u.TargetState != r.TargetState:
			c.violate(InvNothingLost, "%s stored as %s/%s, want %s/%s", n, u.Hash.Short(), u.TargetState, r.Hash.Short(), r.TargetState)
		}
	}
}
