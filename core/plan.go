package core

import (
	"container/heap"
	"fmt"
	"sort"
)

// Plan is the outcome of one scheduling pass: the decisions to write, in order,
// and the units that want to run but fit nowhere.
type Plan struct {
	Decisions   []Decision
	Unplaceable []Unplaceable
}

// eviction records why a unit lost its placement in this pass, so that placing it
// again becomes a Reschedule and failing to becomes an Unschedule.
type eviction struct {
	from    string
	cause   Cause
	related string
	reason  string
}

// planner holds the state of one pass. Every loop runs in sorted order, so the
// same snapshot always gives the same plan.
type planner struct {
	units    map[string]*SchedUnit
	names    []string     // sorted unit names
	globals  []*SchedUnit // global units, by name
	machines map[string]*machineModel
	order    []*machineModel // sorted by ID
	heap     loadHeap
	where    map[string]*machineModel // non-global unit -> machine it is placed on
	evicted  map[string]eviction
	byMeta   map[string][]*machineModel
	failed   map[string]bool
	replaces *ReplaceGraph
	// chain holds the units of the chain of displacements under way.
	chain map[string]bool
	// aside holds the displaced units that fit nowhere else, to be tried again;
	// asides counts how often each was set aside in this pass.
	aside  []aside
	asides map[string]int
	plan   Plan
}

// aside is a displaced unit waiting to be tried again, and why it fit nowhere.
type aside struct {
	unit   *SchedUnit
	reason string
}

// PlanSchedule computes the engine's decisions for a snapshot: remove placements
// that are no longer valid (unit destroyed or inactive, machine gone, constraint
// broken, replaced), then place every unit that should run on the least-loaded
// eligible machine, ties broken by machine ID. Its cost grows with the units to
// (re)place and the placements to check, not with units × machines.
func PlanSchedule(s Snapshot) Plan {
	p := &planner{
		units:    make(map[string]*SchedUnit, len(s.Units)),
		machines: make(map[string]*machineModel, len(s.Machines)),
		names:    make([]string, 0, len(s.Units)),
		order:    make([]*machineModel, 0, len(s.Machines)),
		where:    make(map[string]*machineModel, len(s.Placements)),
		evicted:  map[string]eviction{},
		byMeta:   map[string][]*machineModel{},
		failed:   map[string]bool{},
		chain:    map[string]bool{},
		asides:   map[string]int{},
	}
	all := make([]*SchedUnit, len(s.Units))
	for i := range s.Units {
		u := &s.Units[i]
		p.units[u.Name] = u
		p.names = append(p.names, u.Name)
		all[i] = u
	}
	p.replaces = NewReplaceGraph(all)
	sort.Strings(p.names)
	for _, n := range p.names {
		if u := p.units[n]; u.Global {
			p.globals = append(p.globals, u)
		}
	}
	for _, m := range s.Machines {
		mm := newMachineModel(m)
		p.machines[m.ID] = mm
		p.order = append(p.order, mm)
	}
	sort.Slice(p.order, func(i, j int) bool { return p.order[i].state.ID < p.order[j].state.ID })

	retarget := p.admitPlacements(s.Placements)
	p.placeGlobals()
	for p.checkPlaced() {
		p.placeGlobals()
	}
	p.heap = append(loadHeap(nil), p.order...)
	for i, m := range p.heap {
		m.heapIndex = i
	}
	heap.Init(&p.heap)
	p.placePending()
	for _, d := range retarget {
		if m := p.where[d.Unit]; m != nil && m.state.ID == d.To {
			p.plan.Decisions = append(p.plan.Decisions, d)
		}
	}
	return p.plan
}

// emptyMachineID says why a unit whose MachineID is empty runs nowhere.
const emptyMachineID = "its MachineID is empty and matches no machine"

func (p *planner) unschedule(unit, from string, cause Cause, reason string) {
	p.plan.Decisions = append(p.plan.Decisions, Decision{Kind: Unschedule, Unit: unit, From: from, Cause: cause, Reason: reason})
}

// admitPlacements keeps the placements that are still wanted on live machines and
// returns the target-state updates they need. Placements on machines that went
// away, or with old contents, are remembered, to be rescheduled in this pass.
// A unit keeps one placement, a current one if it has one; the others are
// removed as duplicates.
func (p *planner) admitPlacements(in []Placement) []Decision {
	ps := append([]Placement(nil), in...)
	sortPlacements(ps)
	var retarget []Decision
	for _, pl := range ps {
		u := p.units[pl.Unit]
		m := p.machines[pl.Machine]
		switch {
		case u == nil:
			p.unschedule(pl.Unit, pl.Machine, CauseDestroyed, "unit destroyed")
		case u.Global:
			p.unschedule(pl.Unit, pl.Machine, CauseGlobal, "unit is global")
		case p.where[u.Name] != nil:
			p.unschedule(pl.Unit, pl.Machine, CauseDuplicate, "duplicate placement")
		case u.TargetState == Inactive:
			p.unschedule(pl.Unit, pl.Machine, CauseTargetState, "target state inactive")
		case u.Invalid != "":
			p.unschedule(pl.Unit, pl.Machine, CauseInvalid, u.Invalid)
		case m == nil || pl.Hash != u.Hash:
			if _, dup := p.evicted[u.Name]; dup {
				p.unschedule(pl.Unit, pl.Machine, CauseDuplicate, "duplicate placement")
				continue
			}
			ev := eviction{from: pl.Machine, cause: CauseContentsChanged, reason: "contents changed"}
			if m == nil {
				ev.cause, ev.reason = CauseMachineGone, fmt.Sprintf("machine %s went away", pl.Machine)
			}
			p.evicted[u.Name] = ev
		default:
			if ev, dup := p.evicted[u.Name]; dup {
				p.unschedule(u.Name, ev.from, CauseDuplicate, "duplicate placement")
				delete(p.evicted, u.Name)
			}
			m.add(u)
			p.where[u.Name] = m
			if pl.TargetState != u.TargetState {
				retarget = append(retarget, Decision{Kind: Retarget, Unit: u.Name, To: m.state.ID, Hash: u.Hash, TargetState: u.TargetState, Cause: CauseTargetState})
			}
		}
	}
	return retarget
}

// placeGlobals recomputes, for every machine, which global units run there.
func (p *planner) placeGlobals() {
	for _, m := range p.order {
		for name := range m.globals {
			delete(m.globals, name)
			if _, placed := m.placed[name]; !placed {
				m.unindex(name)
			}
		}
		if len(p.globals) == 0 {
			continue
		}
		for _, g := range EligibleGlobals(m.state, m.sortedPlaced(), p.globals) {
			m.addGlobal(g)
		}
	}
}

// checkPlaced evicts placed units whose machine no longer suits them, in name
// order, until nothing changes: the earlier of two conflicting units stays. It
// reports whether it evicted any, since that can change which global units run
// where (and a unit may need a global peer).
func (p *planner) checkPlaced() bool {
	evicted := false
	for changed := true; changed; {
		changed = false
		for _, n := range p.names {
			m := p.where[n]
			if m == nil {
				continue
			}
			u := p.units[n]
			if reason := p.ableToRun(u, m, true); reason != "" {
				m.remove(n)
				delete(p.where, n)
				p.evicted[n] = eviction{from: m.state.ID, cause: CauseConstraint, reason: reason}
				changed, evicted = true, true
			}
		}
	}
	return evicted
}

// ableToRun says why unit u cannot run on m, or "" if it can. With staying set,
// u is already on m and conflicts only count against earlier-named units.
func (p *planner) ableToRun(u *SchedUnit, m *machineModel, staying bool) string {
	r := u.Req
	if r.HasMachineID && !m.state.MatchID(r.MachineID) {
		if r.MachineID == "" {
			return emptyMachineID
		}
		return fmt.Sprintf("requires machine %s", r.MachineID)
	}
	if !m.state.MatchMetadata(r.Metadata) {
		return "machine metadata does not match"
	}
	for _, peer := range r.MachineOf {
		if !m.has(peer) {
			return fmt.Sprintf("peer %s is not on the machine", peer)
		}
	}
	conflict := func(v *SchedUnit) bool {
		if v.Name == u.Name || (staying && !v.Global && v.Name > u.Name) {
			return false
		}
		return ConflictsWith(u.Name, r, v.Name, v.Req)
	}
	var with string
	consider := func(set map[string]*SchedUnit) {
		for _, v := range set {
			if (with == "" || v.Name < with) && conflict(v) {
				with = v.Name
			}
		}
	}
	if len(r.Conflicts) > 0 {
		consider(m.placed)
		consider(m.globals)
	} else {
		consider(m.conflictors)
	}
	if with != "" {
		return fmt.Sprintf("conflicts with %s", with)
	}
	with = ""
	for _, v := range m.replacers {
		if (with == "" || v.Name < with) && p.replaces.Replaces(v.Name, u.Name) {
			with = v.Name
		}
	}
	if with != "" {
		return fmt.Sprintf("%s replaces it", with)
	}
	return ""
}
