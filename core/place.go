package core

import (
	"container/heap"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

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
	// since displacements in that round may have made room; so is a unit that a
	// Replaces displaced and that fit nowhere else, since a later displacement may
	// free its machine again. A unit fails only when a whole round places nothing.
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
		for _, a := range p.aside {
			blocked[a.unit.Name] = a.reason
			next = append(next, a.unit)
		}
		p.aside = p.aside[:0]
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
	p.assign(u, m)
	for _, victim := range p.victimsOf(u, m) {
		p.displace(victim, m, replacedBy(u.Name))
	}
}

// replacedBy is the eviction of a unit that replacer displaces.
func replacedBy(replacer string) eviction {
	return eviction{cause: CauseReplaced, related: replacer, reason: "replaced by " + replacer}
}

// assign records u on m and emits a Schedule, or a Reschedule if u was evicted
// earlier in this pass.
func (p *planner) assign(u *SchedUnit, m *machineModel) {
	m.add(u)
	p.heap.fix(m)
	p.where[u.Name] = m
	d := Decision{Kind: Schedule, Unit: u.Name, To: m.state.ID, Hash: u.Hash, TargetState: u.TargetState, Cause: CausePending}
	if ev, ok := p.evicted[u.Name]; ok {
		d.Kind, d.From, d.Cause, d.Related, d.Reason = Reschedule, ev.from, ev.cause, ev.related, ev.reason
		delete(p.evicted, u.Name)
	}
	p.plan.Decisions = append(p.plan.Decisions, d)
}

// fail reports u unplaceable; if it lost its placement in this pass, that
// placement is removed.
func (p *planner) fail(u *SchedUnit, reason string) {
	p.unplaceEvicted(u.Name)
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
// victim's own constraints, or sets it aside if there is none. The units the
// victim replaces on its new machine are displaced in turn, and so are the units
// on m that need the victim there (MachineOf), or a global unit that no longer
// runs on m once the victim left (one it kept out may push out another): they
// follow it or are set aside. A unit that a chain of displacements reaches
// again (a cycle of Replaces) is unscheduled instead, so every chain ends.
func (p *planner) displace(victim *SchedUnit, m *machineModel, ev eviction) {
	if p.where[victim.Name] != m {
		return // already moved by an earlier displacement in this chain
	}
	m.remove(victim.Name)
	gone := p.refreshGlobals(m)
	p.heap.fix(m)
	delete(p.where, victim.Name)
	ev.from = m.state.ID
	p.evicted[victim.Name] = ev
	if p.chain[victim.Name] {
		p.fail(victim, "displaced again by a cycle of Replaces")
		return
	}
	p.chain[victim.Name] = true
	defer delete(p.chain, victim.Name)
	if to, why := p.choose(victim, m); to == nil {
		p.setAside(victim, why)
	} else {
		p.assign(victim, to)
		for _, v := range p.victimsOf(victim, to) {
			p.displace(v, to, replacedBy(victim.Name))
		}
	}
	for _, peer := range append([]string{victim.Name}, gone...) {
		for _, dep := range p.dependents(peer, m) {
			p.displace(dep, m, eviction{cause: CauseFollowsPeer, related: peer, reason: fmt.Sprintf("%s (peer %s)", ev.reason, peer)})
		}
	}
}

// refreshGlobals recomputes which global units run on m after a unit left it,
// and returns, by name, those that no longer do.
func (p *planner) refreshGlobals(m *machineModel) []string {
	if len(p.globals) == 0 {
		return nil
	}
	now := EligibleGlobals(m.state, m.sortedPlaced(), p.globals)
	keep := make(map[string]bool, len(now))
	for _, g := range now {
		keep[g.Name] = true
		if _, ok := m.globals[g.Name]; !ok {
			m.addGlobal(g)
		}
	}
	var gone []string
	for name := range m.globals {
		if !keep[name] {
			delete(m.globals, name)
			m.unindex(name)
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	return gone
}

// setAside unschedules a displaced unit that no other machine can take, and
// keeps it to be tried again in the next round of placePending. A unit set
// aside as many times as there are units fails instead, so that every pass
// ends.
func (p *planner) setAside(u *SchedUnit, reason string) {
	if p.asides[u.Name]++; p.asides[u.Name] > len(p.names) {
		p.fail(u, reason)
		return
	}
	p.unplaceEvicted(u.Name)
	p.aside = append(p.aside, aside{unit: u, reason: reason})
}

// unplaceEvicted removes the placement a unit lost in this pass and found no
// machine to replace, if it has one: an Unschedule with the eviction's cause.
func (p *planner) unplaceEvicted(name string) {
	if ev, ok := p.evicted[name]; ok {
		p.plan.Decisions = append(p.plan.Decisions, Decision{Kind: Unschedule, Unit: name, From: ev.from,
			Cause: ev.cause, Related: ev.related, Reason: ev.reason + "; no eligible machine"})
		delete(p.evicted, name)
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
	if len(r.MachineOf) == 0 && !r.HasMachineID && len(r.Metadata) == 0 {
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
	if r.HasMachineID {
		if r.MachineID == "" {
			return nil, emptyMachineID
		}
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

// metadataKey is a string that identifies a metadata requirement: keys in
// order, each with its values, every string prefixed by its length so that no
// two requirements share a key whatever their strings hold.
func metadataKey(md map[string][]string) string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	put := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	for _, k := range keys {
		put(k)
		b = strconv.AppendInt(b, int64(len(md[k])), 10)
		b = append(b, '|')
		for _, v := range md[k] {
			put(v)
		}
	}
	return string(b)
}
