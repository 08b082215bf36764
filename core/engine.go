package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// EngineConfig configures an Engine.
type EngineConfig struct {
	// ID identifies this engine in the leadership lease (its machine ID).
	ID string
	// Session identifies the fleetd process (as AgentConfig.Session): a second
	// live process with the same ID never shares this engine's lease.
	Session string
	// LeaseTTL is the leadership lease's time to live (fleet: 5 × the reconcile
	// interval, 10 s). The lease is renewed every pass and at least every TTL/3.
	LeaseTTL time.Duration
}

// Validate reports the first field of cfg that cannot work, naming it.
func (cfg EngineConfig) Validate() error {
	switch {
	case cfg.ID == "":
		return errors.New("engine config: ID is empty")
	case cfg.Session == "":
		return errors.New("engine config: Session is empty")
	case cfg.LeaseTTL < minTTL:
		return fmt.Errorf("engine config: LeaseTTL %v is below the minimum %v", cfg.LeaseTTL, minTTL)
	}
	return nil
}

// minTTL is the shortest lease TTL the passes accept: below it, a pass's
// renewal interval (TTL/3) would make a driver spin.
const minTTL = 3 * time.Millisecond

// EngineResult is what one engine pass did.
type EngineResult struct {
	Leader      bool  // this engine held the lease during the pass
	Fence       Fence // the fence its writes carried
	Decisions   []Decision
	Unplaceable []Unplaceable
	// Units and Placements count what a full pass read (for metrics).
	Units, Placements int
	// NextWake is when the pass wants to run again at the latest (lease renewal).
	NextWake time.Time
}

// Engine is the scheduler role. It keeps no cluster state between passes except
// caches: parsed requirements by content hash, and the last plan with what it was
// planned from. Every decision is re-derived from the registry, so a new leader
// picks up exactly where the old one stopped.
type Engine struct {
	cfg   EngineConfig
	reg   EngineRegistry
	reqs  map[Hash]parsedReqs
	last  planMemo
	fence Fence
}

// planMemo is the last plan and the registry contents it was planned from. A
// pass that reads the same units, machines and placements gets the same plan
// (PlanSchedule is a function of its snapshot, and requirements of the content
// hash), so it reuses it instead of planning again: the steady state of a lease
// renewal costs the reads and one comparison.
type planMemo struct {
	valid      bool
	units      []Unit
	machines   []MachineState
	placements []Placement
	plan       Plan
}

// matches reports whether these reads are the ones the memo was planned from.
func (m *planMemo) matches(units []Unit, machines []MachineState, placements []Placement) bool {
	return m.valid && slices.Equal(units, m.units) && slices.Equal(placements, m.placements) &&
		slices.EqualFunc(machines, m.machines, sameMachineState)
}

// remember keeps plan as the plan of these reads, with its own copy of the
// machines' metadata (a registry may share and later change its maps).
func (m *planMemo) remember(units []Unit, machines []MachineState, placements []Placement, plan Plan) {
	ms := make([]MachineState, len(machines))
	for i, ma := range machines {
		ma.Metadata = maps.Clone(ma.Metadata)
		ms[i] = ma
	}
	*m = planMemo{valid: true, units: units, machines: ms, placements: placements, plan: plan}
}

// sameMachineState reports whether a and b describe the machine identically.
func sameMachineState(a, b MachineState) bool {
	return a.ID == b.ID && a.PublicIP == b.PublicIP && a.Capabilities == b.Capabilities &&
		a.Version == b.Version && maps.Equal(a.Metadata, b.Metadata)
}

type parsedReqs struct {
	req Requirements
	// specifiers: some value has a '%', so it is expanded per unit name.
	specifiers bool
	err        string
	// missing: the contents were not found (a race with a destroy); not cached,
	// so a resubmission of the same file is read again.
	missing bool
}

// NewEngine returns an engine that works through reg, or the error of
// cfg.Validate.
func NewEngine(cfg EngineConfig, reg EngineRegistry) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, reg: reg, reqs: map[Hash]parsedReqs{}}, nil
}

// Reconcile runs one engine pass at time now: take or renew the leadership lease;
// if leading, read the cluster, plan, and write the decisions fenced. A pass that
// is not leading returns Leader=false and no error. Only decisions that were
// written are reported: none when the write failed, and a move whose placement
// was skipped (its unit changed meanwhile) as the unschedule it became.
func (e *Engine) Reconcile(ctx context.Context, now time.Time) (EngineResult, error) {
	res := EngineResult{NextWake: now.Add(e.cfg.LeaseTTL / 3)}
	fence, err := e.reg.AcquireLeadership(ctx, e.cfg.ID, e.cfg.Session, e.cfg.LeaseTTL)
	if errors.Is(err, ErrNotLeader) {
		e.fence = Fence{}
		return res, nil
	}
	if err != nil {
		e.fence = Fence{}
		return res, fmt.Errorf("engine %s: acquire leadership: %w", e.cfg.ID, err)
	}
	e.fence = fence
	res.Leader, res.Fence = true, fence
	units, machines, placements, err := e.read(ctx)
	if err != nil {
		return res, fmt.Errorf("engine %s: read cluster: %w", e.cfg.ID, err)
	}
	plan, err := e.plan(ctx, units, machines, placements)
	if err != nil {
		return res, fmt.Errorf("engine %s: read cluster: %w", e.cfg.ID, err)
	}
	res.Unplaceable = plan.Unplaceable
	res.Units, res.Placements = len(units), len(placements)
	if len(plan.Decisions) == 0 {
		return res, nil
	}
	skipped, err := e.reg.ApplySchedule(ctx, fence, ops(plan.Decisions, unitRevisions(units)))
	if errors.Is(err, ErrStaleFence) {
		e.fence = Fence{}
		res.Leader, res.Fence = false, Fence{}
	}
	if err != nil {
		return res, fmt.Errorf("engine %s: write %d decisions: %w", e.cfg.ID, len(plan.Decisions), err)
	}
	res.Decisions = withoutSkipped(plan.Decisions, skipped)
	return res, nil
}

// unitRevisions maps each unit to the revision planned from.
func unitRevisions(units []Unit) func(string) int64 {
	revs := make(map[string]int64, len(units))
	for _, u := range units {
		revs[u.Name] = u.Revision
	}
	return func(name string) int64 { return revs[name] }
}

// withoutSkipped drops the placing part of the decisions on the skipped units:
// a Schedule or Retarget disappears, a Reschedule becomes an Unschedule.
func withoutSkipped(ds []Decision, skipped []string) []Decision {
	if len(skipped) == 0 {
		return ds
	}
	skip := make(map[string]bool, len(skipped))
	for _, u := range skipped {
		skip[u] = true
	}
	out := ds[:0:0]
	for _, d := range ds {
		switch {
		case !skip[d.Unit] || d.Kind == Unschedule:
			out = append(out, d)
		case d.Kind == Reschedule && d.From != d.To:
			d.Kind, d.To = Unschedule, ""
			out = append(out, d)
		}
	}
	return out
}

// KeepLease renews or tries to take the lease without reading the cluster: for
// a driver woken by its timer alone, so that an idle cluster costs lease
// renewals only. It returns the pass's Leader, Fence and NextWake, and
// changed when leadership was just gained or lost, after which the driver
// runs a full pass (Reconcile).
func (e *Engine) KeepLease(ctx context.Context, now time.Time) (res EngineResult, changed bool, err error) {
	res = EngineResult{NextWake: now.Add(e.cfg.LeaseTTL / 3)}
	before := e.fence
	fence, err := e.reg.AcquireLeadership(ctx, e.cfg.ID, e.cfg.Session, e.cfg.LeaseTTL)
	switch {
	case errors.Is(err, ErrNotLeader):
		e.fence, err = Fence{}, nil
	case err != nil:
		e.fence, err = Fence{}, fmt.Errorf("engine %s: acquire leadership: %w", e.cfg.ID, err)
	default:
		e.fence = fence
		res.Leader, res.Fence = true, fence
	}
	return res, e.fence != before, err
}

// Resign gives up the lease if this engine holds it (graceful shutdown).
func (e *Engine) Resign(ctx context.Context) error {
	if e.fence == (Fence{}) {
		return nil
	}
	f := e.fence
	e.fence = Fence{}
	if err := e.reg.ResignLeadership(ctx, f); err != nil {
		return fmt.Errorf("engine %s: resign: %w", e.cfg.ID, err)
	}
	return nil
}

// read reads units, machines and placements.
func (e *Engine) read(ctx context.Context) ([]Unit, []MachineState, []Placement, error) {
	units, err := e.reg.Units(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	machines, err := e.reg.Machines(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	placements, err := e.reg.Placements(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return units, machines, placements, nil
}

// plan returns the plan for these reads: the last one if they are the same as
// its, or else a new one, remembered unless some unit's contents were missing
// (they may be found by a later read of the same units).
func (e *Engine) plan(ctx context.Context, units []Unit, machines []MachineState, placements []Placement) (Plan, error) {
	if e.last.matches(units, machines, placements) {
		p := e.last.plan
		return Plan{Decisions: slices.Clone(p.Decisions), Unplaceable: slices.Clone(p.Unplaceable)}, nil
	}
	e.last = planMemo{}
	snap, complete, err := e.snapshot(ctx, units, machines, placements)
	if err != nil {
		return Plan{}, err
	}
	plan := PlanSchedule(snap)
	if complete {
		e.last.remember(units, machines, placements, Plan{Decisions: slices.Clone(plan.Decisions), Unplaceable: slices.Clone(plan.Unplaceable)})
	}
	return plan, nil
}

// snapshot resolves each unit's requirements (parsed once per content hash)
// into the scheduler's snapshot. complete is false if some unit's contents
// were missing.
func (e *Engine) snapshot(ctx context.Context, units []Unit, machines []MachineState, placements []Placement) (snap Snapshot, complete bool, err error) {
	snap = Snapshot{Units: make([]SchedUnit, 0, len(units)), Machines: machines, Placements: placements}
	seen := make(map[Hash]bool, len(units))
	complete = true
	for _, u := range units {
		pr, err := e.requirements(ctx, u)
		if err != nil {
			return Snapshot{}, false, err
		}
		complete = complete && !pr.missing
		seen[u.Hash] = true
		snap.Units = append(snap.Units, pr.schedUnit(u))
	}
	for h := range e.reqs {
		if !seen[h] {
			delete(e.reqs, h)
		}
	}
	return snap, complete, nil
}

// requirements returns the parsed [X-Fleet] requirements of u's contents, reading
// and parsing them only the first time a hash is seen.
func (e *Engine) requirements(ctx context.Context, u Unit) (parsedReqs, error) {
	if pr, ok := e.reqs[u.Hash]; ok {
		return pr, nil
	}
	pr, err := loadRequirements(ctx, e.reg, u)
	if err != nil {
		return pr, err
	}
	if !pr.missing {
		e.reqs[u.Hash] = pr
	}
	return pr, nil
}

// contentReader reads stored unit contents by hash.
type contentReader interface {
	UnitContents(ctx context.Context, hash Hash) ([]byte, error)
}

// loadRequirements reads and parses a unit's contents. Stored contents that are
// missing or unparsable make the unit invalid (not an error of the pass); only a
// failure to reach the registry is an error.
func loadRequirements(ctx context.Context, reg contentReader, u Unit) (parsedReqs, error) {
	data, err := reg.UnitContents(ctx, u.Hash)
	if errors.Is(err, ErrUnitNotFound) {
		return parsedReqs{err: fmt.Sprintf("contents %s missing", u.Hash.Short()), missing: true}, nil
	}
	if err != nil {
		return parsedReqs{}, fmt.Errorf("read contents of %s: %w", u.Name, err)
	}
	uf, err := ParseUnitFile(u.Name, data)
	if err != nil {
		return parsedReqs{err: err.Error()}, nil
	}
	req, err := ParseRequirements(u.Name, uf)
	if err != nil {
		return parsedReqs{err: err.Error()}, nil
	}
	return parsedReqs{req: req, specifiers: req.hasSpecifiers()}, nil
}

// schedUnit is u with these requirements, specifiers expanded for its name.
// Requirements without specifiers are shared, not copied: the scheduler only
// reads them.
func (pr parsedReqs) schedUnit(u Unit) SchedUnit {
	su := SchedUnit{Unit: u, Invalid: pr.err, Req: pr.req}
	if pr.err == "" && pr.specifiers {
		su.Req = expand(u.Name, pr.req)
	}
	return su
}

// expand applies the unit name's specifiers to its requirements.
func expand(name string, r Requirements) Requirements {
	un, err := ParseUnitName(name)
	if err != nil {
		return r
	}
	return r.ForUnit(un)
}
