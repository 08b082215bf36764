package core

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"
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
	from, reason string
}

// planner holds the state of one pass. Every loop runs in sorted order, so the
// same snapshot always gives the same plan.
type planner struct {
	units    map[string]*SchedUnit
	names    []string // sorted unit names
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
	plan  Plan
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
		where:    map[string]*machineModel{},
		evicted:  map[string]eviction{},
		byMeta:   map[string][]*machineModel{},
		failed:   map[string]bool{},
		chain:    map[string]bool{},
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

func (p *planner) unschedule(unit, from, reason string) {
	p.plan.Decisions = append(p.plan.Decisions, Decision{Kind: Unschedule, Unit: unit, From: from, Reason: reason})
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
			p.unschedule(pl.Unit, pl.Machine, "unit destroyed")
		case u.Global:
			p.unschedule(pl.Unit, pl.Machine, "unit is global")
		case p.where[u.Name] != nil:
			p.unschedule(pl.Unit, pl.Machine, "duplicate placement")
		case u.TargetState == Inactive:
			p.unschedule(pl.Unit, pl.Machine, "target state inactive")
		case u.Invalid != "":
			p.unschedule(pl.Unit, pl.Machine, u.Invalid)
		case m == nil || pl.Hash != u.Hash:
			if _, dup := p.evicted[u.Name]; dup {
				p.unschedule(pl.Unit, pl.Machine, "duplicate placement")
				continue
			}
			reason := "contents changed"
			if m == nil {
				reason = fmt.Sprintf("machine %s went away", pl.Machine)
			}
			p.evicted[u.Name] = eviction{from: pl.Machine, reason: reason}
		default:
			if ev, dup := p.evicted[u.Name]; dup {
				p.unschedule(u.Name, ev.from, "duplicate placement")
				delete(p.evicted, u.Name)
			}
			m.add(u)
			p.where[u.Name] = m
			if pl.TargetState != u.TargetState {
				retarget = append(retarget, Decision{Kind: Retarget, Unit: u.Name, To: m.state.ID, Hash: u.Hash, TargetState: u.TargetState})
			}
		}
	}
	return retarget
}

// placeGlobals recomputes, for every machine, which global units run there.
func (p *planner) placeGlobals() {
	var globals []*SchedUnit
	for _, n := range p.names {
		if u := p.units[n]; u.Global {
			globals = append(globals, u)
		}
	}
	for _, m := range p.order {
		for name := range m.globals {
			delete(m.globals, name)
			if _, placed := m.placed[name]; !placed {
				m.unindex(name)
			}
		}
		if len(globals) == 0 {
			continue
		}
		placed := make([]*SchedUnit, 0, len(m.placed))
		for _, u := range m.placed {
			placed = append(placed, u)
		}
		sort.Slice(placed, func(i, j int) bool { return placed[i].Name < placed[j].Name })
		for _, g := range EligibleGlobals(m.state, placed, globals) {
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
				p.evicted[n] = eviction{from: m.state.ID, reason: reason}
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
	if r.MachineID != "" && !m.state.MatchID(r.MachineID) {
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

// placePending places every unit that should run and has no placement, in name
// order. A unit whose MachineOf peers are not placed yet waits for them, in
// rounds, until a round places nothing.
func (p *planner) placePending() {
	var pending []*SchedUnit
	for _, n := range p.names {
		u := p.units[n]
		if u.Global || u.TargetState == Inactive || p.where[n] != nil {
			continue
		}
		if u.Invalid != "" {
			p.fail(u, u.Invalid)
			continue
		}
		pending = append(pending, u)
	}
	// A unit that fits nowhere is tried again after a round that placed something,
	// since displacements in that round may have made room; it fails only when a
	// whole round places nothing.
	blocked := map[string]string{}
	for progress := true; progress && len(pending) > 0; {
		progress = false
		var next []*SchedUnit
		for _, u := range pending {
			if p.waitsForPeer(u, blocked) {
				next = append(next, u)
				continue
			}
			m, reason := p.choose(u, nil)
			if m == nil {
				blocked[u.Name] = reason
				next = append(next, u)
				continue
			}
			delete(blocked, u.Name)
			p.place(u, m)
			progress = true
		}
		pending = next
	}
	for _, u := range pending {
		reason, ok := blocked[u.Name]
		if !ok {
			reason = "waits for peers that cannot be placed: " + strings.Join(u.Req.MachineOf, ", ")
		}
		p.fail(u, reason)
	}
}

// waitsForPeer reports whether one of u's MachineOf peers is a unit that is not
// placed yet but may be placed later in this pass (it has not failed, and it did
// not fit anywhere in the last round).
func (p *planner) waitsForPeer(u *SchedUnit, blocked map[string]string) bool {
	for _, peer := range u.Req.MachineOf {
		pu := p.units[peer]
		if pu != nil && !pu.Global && pu.TargetState != Inactive && pu.Invalid == "" && p.where[peer] == nil {
			if _, stuck := blocked[peer]; !p.failed[peer] && !stuck {
				return true
			}
		}
	}
	return false
}

// place puts u on m, the machine chosen for it, and displaces the units it
// replaces there.
func (p *planner) place(u *SchedUnit, m *machineModel) {
	p.assign(u, m, "")
	for _, victim := range p.victimsOf(u, m) {
		p.displace(victim, m, fmt.Sprintf("replaced by %s", u.Name))
	}
}

// assign records u on m and emits a Schedule, or a Reschedule if u was evicted
// earlier in this pass.
func (p *planner) assign(u *SchedUnit, m *machineModel, why string) {
	m.add(u)
	p.heap.fix(m)
	p.where[u.Name] = m
	d := Decision{Kind: Schedule, Unit: u.Name, To: m.state.ID, Hash: u.Hash, TargetState: u.TargetState}
	if ev, ok := p.evicted[u.Name]; ok {
		d.Kind, d.From, d.Reason = Reschedule, ev.from, ev.reason
		delete(p.evicted, u.Name)
	} else if why != "" {
		d.Reason = why
	}
	p.plan.Decisions = append(p.plan.Decisions, d)
}

// fail reports u unplaceable; if it lost its placement in this pass, that
// placement is removed.
func (p *planner) fail(u *SchedUnit, reason string) {
	if ev, ok := p.evicted[u.Name]; ok {
		p.unschedule(u.Name, ev.from, ev.reason+"; no eligible machine")
		delete(p.evicted, u.Name)
	}
	p.failed[u.Name] = true
	p.plan.Unplaceable = append(p.plan.Unplaceable, Unplaceable{Unit: u.Name, Reason: reason})
}

// victimsOf lists the placed units on m that u replaces, by name.
func (p *planner) victimsOf(u *SchedUnit, m *machineModel) []*SchedUnit {
	if len(u.Req.Replaces) == 0 {
		return nil
	}
	var out []*SchedUnit
	for _, v := range m.placed {
		if p.replaces.Replaces(u.Name, v.Name) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// displace moves victim off m to its best other eligible machine, honouring the
// victim's own constraints, or unschedules it if there is none. The units the
// victim replaces on its new machine are displaced in turn, and so are the units
// on m that need the victim there (MachineOf): they follow it or are
// unscheduled. A unit that a chain of displacements reaches again (a cycle of
// Replaces) is unscheduled instead, so every chain ends.
func (p *planner) displace(victim *SchedUnit, m *machineModel, reason string) {
	if p.where[victim.Name] != m {
		return // already moved by an earlier displacement in this chain
	}
	m.remove(victim.Name)
	p.heap.fix(m)
	delete(p.where, victim.Name)
	p.evicted[victim.Name] = eviction{from: m.state.ID, reason: reason}
	if p.chain[victim.Name] {
		p.fail(victim, "displaced again by a cycle of Replaces")
		return
	}
	p.chain[victim.Name] = true
	defer delete(p.chain, victim.Name)
	if to, why := p.choose(victim, m); to == nil {
		p.fail(victim, why)
	} else {
		p.assign(victim, to, "")
		for _, v := range p.victimsOf(victim, to) {
			p.displace(v, to, fmt.Sprintf("replaced by %s", victim.Name))
		}
	}
	for _, dep := range p.dependents(victim.Name, m) {
		p.displace(dep, m, fmt.Sprintf("%s (peer %s)", reason, victim.Name))
	}
}

// dependents lists, by name, the units placed on m that need peer there.
func (p *planner) dependents(peer string, m *machineModel) []*SchedUnit {
	var out []*SchedUnit
	for _, u := range m.placed {
		if contains(u.Req.MachineOf, peer) {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// choose returns the least-loaded machine (ties by ID) that can run u, other than
// exclude, or nil and the reason.
func (p *planner) choose(u *SchedUnit, exclude *machineModel) (*machineModel, string) {
	r := u.Req
	if len(r.MachineOf) == 0 && r.MachineID == "" && len(r.Metadata) == 0 {
		return p.chooseFromHeap(u, exclude)
	}
	var best *machineModel
	cands, last := p.candidates(u)
	for _, m := range cands {
		if m == exclude {
			last = "no other eligible machine"
			continue
		}
		if best != nil && !m.less(best) {
			continue
		}
		if why := p.ableToRun(u, m, false); why != "" {
			last = why
			continue
		}
		best = m
	}
	if best == nil {
		return nil, last
	}
	return best, ""
}

// chooseFromHeap pops machines in (load, ID) order until one can run u.
func (p *planner) chooseFromHeap(u *SchedUnit, exclude *machineModel) (*machineModel, string) {
	var popped []*machineModel
	defer func() {
		for _, m := range popped {
			heap.Push(&p.heap, m)
		}
	}()
	last := "no live machine"
	for p.heap.Len() > 0 {
		m := heap.Pop(&p.heap).(*machineModel)
		popped = append(popped, m)
		if m == exclude {
			last = "no other eligible machine"
			continue
		}
		if why := p.ableToRun(u, m, false); why != "" {
			last = why
			continue
		}
		return m, ""
	}
	return nil, last
}

// candidates narrows the machines a constrained unit may run on: its peer's
// machine, the machine it names, or the machines matching its metadata. With
// none, it says why.
func (p *planner) candidates(u *SchedUnit) ([]*machineModel, string) {
	r := u.Req
	if len(r.MachineOf) > 0 {
		peer := r.MachineOf[0]
		if pm := p.where[peer]; pm != nil {
			return []*machineModel{pm}, ""
		}
		if pu := p.units[peer]; pu == nil || !pu.Global {
			return nil, fmt.Sprintf("peer %s is not placed", peer)
		}
		return p.order, "no live machine"
	}
	if r.MachineID != "" {
		if m := p.machines[r.MachineID]; m != nil {
			return []*machineModel{m}, ""
		}
		var out []*machineModel
		for _, m := range p.order {
			if m.state.MatchID(r.MachineID) {
				out = append(out, m)
			}
		}
		return out, fmt.Sprintf("no live machine %s", r.MachineID)
	}
	key := metadataKey(r.Metadata)
	out, ok := p.byMeta[key]
	if !ok {
		for _, m := range p.order {
			if m.state.MatchMetadata(r.Metadata) {
				out = append(out, m)
			}
		}
		p.byMeta[key] = out
	}
	return out, "no live machine matches its metadata"
}

// metadataKey is a canonical string for a metadata requirement.
func metadataKey(md map[string][]string) string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + strings.Join(md[k], ",") + ";")
	}
	return b.String()
}
