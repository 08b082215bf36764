package core

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// AgentConfig configures an Agent.
type AgentConfig struct {
	// Machine is this machine's announced state.
	Machine MachineState
	// Session identifies this fleetd process; a second live session for the same
	// machine ID is refused by the registry.
	Session string
	// TTL is the presence lease's time to live (agent_ttl, 30 s); the agent renews
	// it every TTL/3.
	TTL time.Duration
	// Resync is the longest time between passes, a safety net (default 1 min).
	Resync time.Duration
	// ExternalPresence says that the driver renews the machine's presence
	// itself (Registry.Heartbeat with this Session and TTL), on a goroutine of
	// its own so that a slow systemd never delays it, and calls Republish after
	// a gap in which the presence may have lapsed. Reconcile then neither
	// renews the presence nor wakes for it.
	ExternalPresence bool
	// MaxStartBackoff caps the delay between start attempts of a unit whose
	// start keeps failing (default 5 min). Attempts wait 1 s, 2 s, 4 s, … up to
	// the cap.
	MaxStartBackoff time.Duration
	// FenceGrace, if positive, is self-fencing (agent_fence_grace): a pass
	// that finds the last successful presence renewal sent more than
	// FenceGrace ago stops every running unit of this machine through the
	// unit manager alone and starts none, until a renewal succeeds again (see
	// PresenceRenewed). Zero: off, units keep running (fleet's behaviour).
	FenceGrace time.Duration
}

// Validate reports the first field of cfg that cannot work, naming it.
func (cfg AgentConfig) Validate() error {
	switch {
	case cfg.Machine.ID == "":
		return errors.New("agent config: Machine.ID is empty")
	case cfg.Session == "":
		return errors.New("agent config: Session is empty")
	case cfg.TTL < minTTL:
		return fmt.Errorf("agent config: TTL %v is below the minimum %v", cfg.TTL, minTTL)
	case cfg.Resync < 0:
		return fmt.Errorf("agent config: Resync %v is negative", cfg.Resync)
	case cfg.MaxStartBackoff < 0:
		return fmt.Errorf("agent config: MaxStartBackoff %v is negative", cfg.MaxStartBackoff)
	case cfg.FenceGrace < 0:
		return fmt.Errorf("agent config: FenceGrace %v is negative", cfg.FenceGrace)
	case cfg.FenceGrace > 0 && cfg.FenceGrace <= cfg.TTL/3:
		return fmt.Errorf("agent config: FenceGrace %v is not longer than TTL/3 (%v), the renewal period", cfg.FenceGrace, cfg.TTL/3)
	}
	return nil
}

// AgentResult is what one agent pass did.
type AgentResult struct {
	Tasks     []Task        // tasks run, in order
	Failures  []TaskFailure // tasks that failed; the others still ran
	Published int           // unit states written
	Removed   int           // unit states deleted
	Units     int           // fleet's units on this machine, as systemd listed them
	// Fenced says the pass found the agent fenced (see
	// AgentConfig.FenceGrace): its tasks are the stops of the units that ran,
	// and it neither read nor wrote the registry.
	Fenced bool
	// NextWake is when the pass wants to run again at the latest.
	NextWake time.Time
}

// desiredUnit is one unit this machine should have, as of the unit's revision.
type desiredUnit struct {
	hash   Hash
	target JobState
	rev    int64
}

// startRecord is what the agent did about starting a unit for one revision of
// it: started it (and then leaves it alone: a unit that ran and ended is
// systemd's business), or tried and failed (and then tries again with
// back-off).
type startRecord struct {
	rev      int64
	started  bool
	failures int
	last     time.Time
}

// Agent is the executor role for one machine. Its view of what runs comes from
// the unit manager on every pass, never from memory of what it did; the only
// state it keeps is caches (unit contents by hash), the last states it published
// and which revision of each unit it started on which manager instance.
//
// A launched unit is started when this agent has not started it on the current
// manager instance (UnitManager.Instance) for the unit's current revision:
// after it was placed here, its contents changed, its target state changed (a
// stop and a start, each a new revision), this agent restarted, or a new
// systemd manager replaced the one that ran it. A start that systemd refuses
// is retried with back-off. A unit that was started and then ended (exited,
// crashed, or stopped behind fleet's back) under the same manager is not
// started again: restarting is systemd's job (Restart=).
type Agent struct {
	cfg       AgentConfig
	reg       AgentRegistry
	mgr       UnitManager
	files     map[Hash][]byte
	reqs      map[Hash]parsedReqs
	published map[string]UnitState
	starts    map[string]*startRecord
	instance  string // the manager instance starts refers to
	lastBeat  time.Time
	// renewed is when the last successful presence renewal was sent; fenced
	// says the last pass fenced.
	renewed time.Time
	fenced  bool
	// resync: the next publish first reads what the registry holds for this
	// machine, because published may be wrong (a start, a failed or
	// uncertain publish, a lapsed presence).
	resync bool
	// reloadPending: files changed since the last successful Reload; unreloaded
	// names the units written since then.
	reloadPending bool
	unreloaded    map[string]bool
}

// NewAgent returns the agent of cfg.Machine working through reg and mgr, or the
// error of cfg.Validate.
func NewAgent(cfg AgentConfig, reg AgentRegistry, mgr UnitManager) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Minute
	}
	if cfg.MaxStartBackoff <= 0 {
		cfg.MaxStartBackoff = 5 * time.Minute
	}
	return &Agent{
		cfg: cfg, reg: reg, mgr: mgr,
		files:      map[Hash][]byte{},
		unreloaded: map[string]bool{},
		reqs:       map[Hash]parsedReqs{},
		published:  map[string]UnitState{},
		resync:     true,
		starts:     map[string]*startRecord{},
	}, nil
}

// Reconcile runs one agent pass at time now: renew presence when due, compare
// what is scheduled here with what systemd reports, run the tasks that close the
// gap, and publish changed unit states. If the registry cannot be read, nothing
// is done to the units: they keep running, unless the agent is fenced (see
// AgentConfig.FenceGrace), when the pass only stops them.
func (a *Agent) Reconcile(ctx context.Context, now time.Time) (AgentResult, error) {
	res := AgentResult{}
	if !a.cfg.ExternalPresence {
		if err := a.heartbeat(ctx, now); err != nil {
			if a.Fenced(now) {
				res, ferr := a.fence(ctx, now)
				return res, errors.Join(err, ferr)
			}
			res.NextWake = now.Add(a.cfg.TTL / 3)
			return res, err
		}
	}
	if a.Fenced(now) {
		return a.fence(ctx, now)
	}
	if a.fenced {
		// Unfenced: what the registry holds for this machine may have
		// lapsed or changed meanwhile.
		a.fenced, a.resync = false, true
	}
	desired, err := a.desired(ctx)
	if err != nil {
		res.NextWake = now.Add(a.cfg.TTL / 3)
		return res, fmt.Errorf("agent %s: read desired state: %w", a.cfg.Machine.ID, err)
	}
	actual, err := a.mgr.Units(ctx)
	if err != nil {
		res.NextWake = now.Add(a.cfg.TTL / 3)
		return res, fmt.Errorf("agent %s: list units: %w", a.cfg.Machine.ID, err)
	}
	if inst := a.mgr.Instance(); inst != a.instance {
		// A new manager: nothing this agent started runs any more.
		a.instance = inst
		clear(a.starts)
	}
	tasks, wake := a.plan(desired, actual, now)
	res.NextWake = earliest(now.Add(a.cfg.Resync), wake)
	if !a.cfg.ExternalPresence {
		res.NextWake = earliest(res.NextWake, a.lastBeat.Add(a.cfg.TTL/3))
	}
	res.Tasks, res.Failures = a.run(ctx, tasks, now)
	if len(tasks) > 0 {
		if actual, err = a.mgr.Units(ctx); err != nil {
			return res, fmt.Errorf("agent %s: list units: %w", a.cfg.Machine.ID, err)
		}
	}
	res.Units = len(actual)
	res.Published, res.Removed, err = a.publish(ctx, desired, actual)
	return res, err
}

func earliest(t time.Time, others ...time.Time) time.Time {
	for _, o := range others {
		if !o.IsZero() && o.Before(t) {
			t = o
		}
	}
	return t
}

// heartbeat renews the machine's presence every TTL/3. After a gap long enough
// that the presence (and the states attached to it) may have expired, every
// state is published again.
func (a *Agent) heartbeat(ctx context.Context, now time.Time) error {
	if !a.lastBeat.IsZero() && now.Before(a.lastBeat.Add(a.cfg.TTL/3)) {
		return nil
	}
	if err := a.reg.Heartbeat(ctx, a.cfg.Machine, a.cfg.Session, a.cfg.TTL); err != nil {
		return fmt.Errorf("agent %s: heartbeat: %w", a.cfg.Machine.ID, err)
	}
	if a.lastBeat.IsZero() || now.Sub(a.lastBeat) > a.cfg.TTL/2 {
		a.resync = true
	}
	a.lastBeat = now
	a.PresenceRenewed(now)
	return nil
}

// Republish makes the next pass publish every unit state again, as after a
// gap in presence (see ExternalPresence).
func (a *Agent) Republish() { a.resync = true }

// SetMachine changes the machine's announced state (a reload of its metadata
// or address); the next heartbeat announces it.
func (a *Agent) SetMachine(m MachineState) error {
	if m.ID != a.cfg.Machine.ID {
		return fmt.Errorf("agent %s: cannot become machine %q", a.cfg.Machine.ID, m.ID)
	}
	a.cfg.Machine = m
	return nil
}

// desired reads what should run here: this machine's placements and the global
// units that are eligible on it, with their target states.
func (a *Agent) desired(ctx context.Context) (map[string]desiredUnit, error) {
	placements, err := a.reg.MachinePlacements(ctx, a.cfg.Machine.ID)
	if err != nil {
		return nil, err
	}
	globals, err := a.reg.GlobalUnits(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]desiredUnit, len(placements)+len(globals))
	for _, p := range placements {
		if p.TargetState != Inactive {
			out[p.Unit] = desiredUnit{hash: p.Hash, target: p.TargetState, rev: p.UnitRevision}
		}
	}
	if len(globals) == 0 {
		return out, nil
	}
	units := make([]SchedUnit, len(placements)+len(globals))
	placed := make([]*SchedUnit, len(placements))
	for i, p := range placements {
		if units[i], err = a.schedUnit(ctx, Unit{Name: p.Unit, Hash: p.Hash, TargetState: p.TargetState}); err != nil {
			return nil, err
		}
		placed[i] = &units[i]
	}
	gs := make([]*SchedUnit, len(globals))
	for i, g := range globals {
		j := len(placements) + i
		if units[j], err = a.schedUnit(ctx, g); err != nil {
			return nil, err
		}
		gs[i] = &units[j]
	}
	self, err := a.reg.Machine(ctx, a.cfg.Machine.ID)
	if err != nil {
		return nil, err
	}
	for _, g := range EligibleGlobals(self, placed, gs) {
		out[g.Name] = desiredUnit{hash: g.Hash, target: g.TargetState, rev: g.Revision}
	}
	a.pruneRequirements(placed, gs)
	return out, nil
}

// pruneRequirements drops parsed requirements of contents no longer in use.
func (a *Agent) pruneRequirements(sets ...[]*SchedUnit) {
	n := 0
	for _, s := range sets {
		n += len(s)
	}
	if len(a.reqs) <= 2*n+16 {
		return
	}
	used := make(map[Hash]bool, n)
	for _, s := range sets {
		for _, u := range s {
			used[u.Hash] = true
		}
	}
	for h := range a.reqs {
		if !used[h] {
			delete(a.reqs, h)
		}
	}
}

// schedUnit resolves a unit's requirements, parsed once per content hash.
func (a *Agent) schedUnit(ctx context.Context, u Unit) (SchedUnit, error) {
	pr, ok := a.reqs[u.Hash]
	if !ok {
		var err error
		if pr, err = loadRequirements(ctx, a.reg, u); err != nil {
			return SchedUnit{}, err
		}
		if !pr.missing {
			a.reqs[u.Hash] = pr
		}
	}
	return pr.schedUnit(u), nil
}

// publish writes the states that changed since the last successful publish and
// deletes those of units no longer here. After a start of the agent, a failed
// publish (whose write may or may not have been applied) or a gap in presence,
// it first reads the states the registry holds for this machine, so that a
// stale state left by an earlier run or a lost reply is corrected too.
func (a *Agent) publish(ctx context.Context, desired map[string]desiredUnit, actual []UnitStatus) (int, int, error) {
	if a.resync {
		if err := a.readPublished(ctx); err != nil {
			return 0, 0, err
		}
	}
	var states []UnitState
	present := make(map[string]bool, len(actual))
	for _, s := range actual {
		present[s.Name] = true
		us := UnitState{
			Unit: s.Name, Machine: a.cfg.Machine.ID, Hash: s.Hash,
			LoadState: s.LoadState, ActiveState: s.ActiveState, SubState: s.SubState,
			Launched: a.launched(desired[s.Name], s),
		}
		if old, ok := a.published[s.Name]; !ok || old != us {
			states = append(states, us)
		}
	}
	var removed []string
	for n := range a.published {
		if !present[n] {
			removed = append(removed, n)
		}
	}
	sort.Strings(removed)
	if len(states) == 0 && len(removed) == 0 {
		return 0, 0, nil
	}
	err := a.reg.PublishUnitStates(ctx, a.cfg.Machine.ID, a.cfg.Session, states, removed)
	if err != nil {
		a.resync = true
		if errors.Is(err, ErrNotPresent) {
			// The presence lapsed with every state attached to it: renew it
			// (or let the driver do it) before publishing again.
			a.lastBeat = time.Time{}
		}
		return 0, 0, fmt.Errorf("agent %s: publish states: %w", a.cfg.Machine.ID, err)
	}
	for _, s := range states {
		a.published[s.Unit] = s
	}
	for _, n := range removed {
		delete(a.published, n)
	}
	a.pruneCaches(actual)
	return len(states), len(removed), nil
}

// readPublished replaces the agent's record of its published states with what
// the registry holds for this machine.
func (a *Agent) readPublished(ctx context.Context) error {
	all, err := a.reg.UnitStates(ctx)
	if err != nil {
		return fmt.Errorf("agent %s: read published states: %w", a.cfg.Machine.ID, err)
	}
	a.published = map[string]UnitState{}
	for _, s := range all {
		if s.Machine == a.cfg.Machine.ID {
			a.published[s.Unit] = s
		}
	}
	a.resync = false
	return nil
}

// launched reports whether the agent holds unit s launched: it is to be
// launched with these contents, and it runs or the agent started this revision
// of it (a unit that ran and ended stays launched, as in fleet).
func (a *Agent) launched(d desiredUnit, s UnitStatus) bool {
	if d.target != Launched || d.hash != s.Hash {
		return false
	}
	if s.Running() {
		return true
	}
	r := a.starts[s.Name]
	return r != nil && r.rev == d.rev && r.started
}

// pruneCaches drops cached contents no unit here uses any more.
func (a *Agent) pruneCaches(actual []UnitStatus) {
	if len(a.files) <= 2*len(actual)+16 {
		return
	}
	used := make(map[Hash]bool, len(actual))
	for _, s := range actual {
		used[s.Hash] = true
	}
	for h := range a.files {
		if !used[h] {
			delete(a.files, h)
		}
	}
}

// Purge is the graceful shutdown of fleet's part of the machine: remove every
// unit fleet has here, delete the published states and leave the cluster, so the
// engine reschedules at once.
func (a *Agent) Purge(ctx context.Context) error {
	actual, err := a.mgr.Units(ctx)
	if err != nil {
		return fmt.Errorf("agent %s: purge: list units: %w", a.cfg.Machine.ID, err)
	}
	var errs []error
	for _, s := range actual {
		if err := a.mgr.RemoveUnit(ctx, s.Name); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.Name, err))
		}
	}
	if len(actual) > 0 {
		if err := a.mgr.Reload(ctx); err != nil {
			errs = append(errs, fmt.Errorf("reload: %w", err))
		}
	}
	if err := a.reg.Leave(ctx, a.cfg.Machine.ID, a.cfg.Session); err != nil {
		errs = append(errs, fmt.Errorf("leave: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("agent %s: purge: %w", a.cfg.Machine.ID, err)
	}
	return nil
}
