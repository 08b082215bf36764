package core

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EngineConfig configures an Engine.
type EngineConfig struct {
	// ID identifies this engine in the leadership lease (its machine ID).
	ID string
	// LeaseTTL is the leadership lease's time to live (fleet: 5 × the reconcile
	// interval, 10 s). The lease is renewed every pass and at least every TTL/3.
	LeaseTTL time.Duration
}

// EngineResult is what one engine pass did.
type EngineResult struct {
	Leader      bool  // this engine held the lease during the pass
	Fence       Fence // the fence its writes carried
	Decisions   []Decision
	Unplaceable []Unplaceable
	// NextWake is when the pass wants to run again at the latest (lease renewal).
	NextWake time.Time
}

// Engine is the scheduler role. It keeps no cluster state between passes except a
// cache of parsed requirements by content hash; every decision is re-derived from
// the registry, so a new leader picks up exactly where the old one stopped.
type Engine struct {
	cfg   EngineConfig
	reg   EngineRegistry
	reqs  map[Hash]parsedReqs
	fence Fence
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

// NewEngine returns an engine that works through reg.
func NewEngine(cfg EngineConfig, reg EngineRegistry) *Engine {
	return &Engine{cfg: cfg, reg: reg, reqs: map[Hash]parsedReqs{}}
}

// Reconcile runs one engine pass at time now: take or renew the leadership lease;
// if leading, read the cluster, plan, and write the decisions fenced. A pass that
// is not leading returns Leader=false and no error.
func (e *Engine) Reconcile(ctx context.Context, now time.Time) (EngineResult, error) {
	res := EngineResult{NextWake: now.Add(e.cfg.LeaseTTL / 3)}
	fence, err := e.reg.AcquireLeadership(ctx, e.cfg.ID, e.cfg.LeaseTTL)
	if errors.Is(err, ErrNotLeader) {
		e.fence = Fence{}
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("engine %s: acquire leadership: %w", e.cfg.ID, err)
	}
	e.fence = fence
	res.Leader, res.Fence = true, fence
	snap, err := e.snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("engine %s: read cluster: %w", e.cfg.ID, err)
	}
	plan := PlanSchedule(snap)
	res.Decisions, res.Unplaceable = plan.Decisions, plan.Unplaceable
	if len(plan.Decisions) == 0 {
		return res, nil
	}
	if err := e.reg.ApplySchedule(ctx, fence, ops(plan.Decisions)); err != nil {
		return res, fmt.Errorf("engine %s: write %d decisions: %w", e.cfg.ID, len(plan.Decisions), err)
	}
	return res, nil
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

// snapshot reads units, machines and placements, and resolves each unit's
// requirements (parsed once per content hash).
func (e *Engine) snapshot(ctx context.Context) (Snapshot, error) {
	units, err := e.reg.Units(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	machines, err := e.reg.Machines(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	placements, err := e.reg.Placements(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Units: make([]SchedUnit, 0, len(units)), Machines: machines, Placements: placements}
	seen := make(map[Hash]bool, len(units))
	for _, u := range units {
		pr, err := e.requirements(ctx, u)
		if err != nil {
			return Snapshot{}, err
		}
		seen[u.Hash] = true
		snap.Units = append(snap.Units, pr.schedUnit(u))
	}
	for h := range e.reqs {
		if !seen[h] {
			delete(e.reqs, h)
		}
	}
	return snap, nil
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
