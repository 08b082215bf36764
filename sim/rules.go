package sim

import (
	"path"

	"github.com/fleet-rebuild/fleet/core"
)

// The checker's own reading of fleet's placement rules (fleet-compat.md §4),
// written from the spec, not from core, so that a bug in core's rule
// functions shows as a disagreement. Each is a direct loop over the values.
// They judge requirements as the checker reads them (readXFleet), never as
// core's parser and specifier expansion do.

// idMatches reports whether a MachineID requirement names machine id: the
// full ID, or its first 8 characters.
func idMatches(want, id string) bool {
	return want != "" && (want == id || (len(want) == 8 && len(id) >= 8 && id[:8] == want))
}

// metadataMatches reports whether a machine's metadata satisfies a
// MachineMetadata requirement: every key wanted is there, with one of the
// values wanted for it.
func metadataMatches(want map[string][]string, have map[string]string) bool {
	for key, values := range want {
		v, ok := have[key]
		if !ok {
			return false
		}
		found := false
		for _, w := range values {
			if w == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// globsMatch reports whether name matches one of the glob patterns.
func globsMatch(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, name); err == nil && ok {
			return true
		}
	}
	return false
}

// conflicting reports whether two different units may not share a machine:
// either one's Conflicts matches the other's name.
func conflicting(a, b *core.SchedUnit) bool {
	return a.Name != b.Name && (globsMatch(a.Req.Conflicts, b.Name) || globsMatch(b.Req.Conflicts, a.Name))
}

// couldTake reports whether machine m, with units there, satisfies every
// requirement of unit u that concerns one machine: its MachineID, its
// metadata, its MachineOf peers there, no conflict either way, and no unit
// there that replaces it (replaces reads the Replaces relation). It is "" if
// so, else why not.
func couldTake(u *core.SchedUnit, m core.MachineState, units []*core.SchedUnit, replaces func(a, b string) bool) string {
	r := u.Req
	if r.HasMachineID && !idMatches(r.MachineID, m.ID) {
		return "MachineID " + r.MachineID + " does not match"
	}
	if !metadataMatches(r.Metadata, m.Metadata) {
		return "MachineMetadata does not match"
	}
	for _, peer := range r.MachineOf {
		there := false
		for _, v := range units {
			there = there || v.Name == peer
		}
		if !there {
			return "MachineOf peer " + peer + " is not there"
		}
	}
	for _, v := range units {
		// Only Conflicts (either way) and v's Replaces relate two units.
		if len(r.Conflicts) == 0 && len(v.Req.Conflicts) == 0 && len(v.Req.Replaces) == 0 {
			continue
		}
		if conflicting(u, v) {
			return "conflicts with " + v.Name
		}
		if v.Name != u.Name && replaces(v.Name, u.Name) {
			return "replaced by " + v.Name
		}
	}
	return ""
}

// replacesUnit reports whether submitted unit a replaces submitted unit b:
// a's Replaces matches b's name, and b does not lead back to a through the
// Replaces of the submitted units (replacements in a cycle are ignored).
func (c *Cluster) replacesUnit(a, b string) bool {
	ra := c.units[a]
	if ra == nil || a == b || !globsMatch(ra.Req.Replaces, b) {
		return false
	}
	seen := map[string]bool{b: true}
	todo := []string{b}
	for len(todo) > 0 {
		n := todo[0]
		todo = todo[1:]
		r := c.units[n]
		if r == nil || len(r.Req.Replaces) == 0 {
			continue
		}
		if globsMatch(r.Req.Replaces, a) {
			return false
		}
		// Only a unit with Replaces of its own can lead further.
		for _, next := range c.replacers() {
			if next != n && !seen[next] && globsMatch(r.Req.Replaces, next) {
				seen[next] = true
				todo = append(todo, next)
			}
		}
	}
	return true
}

// eligibleGlobals lists, in name order, the global units machine m runs
// besides its placed units: those to run (target not inactive) whose
// metadata m matches and that conflict with none of the placed units nor with
// a global taken before them.
func eligibleGlobals(m core.MachineState, placed, globals []*core.SchedUnit) []*core.SchedUnit {
	var out []*core.SchedUnit
	for _, g := range globals {
		if g.Invalid != "" || g.TargetState == core.Inactive || !metadataMatches(g.Req.Metadata, m.Metadata) {
			continue
		}
		ok := true
		for _, u := range append(append([]*core.SchedUnit(nil), placed...), out...) {
			ok = ok && !conflicting(g, u)
		}
		if ok {
			out = append(out, g)
		}
	}
	return out
}

// checkUnplaceable checks, once the cluster has converged, that no live
// machine could take a unit the leader reported unplaceable.
func (c *Cluster) checkUnplaceable() {
	if s := c.snapshotForCheck(); s != nil {
		c.checkUnplaceableIn(s, c.unplaceable, "")
	}
}

// checkUnplaceableIn checks that no machine of snapshot s could take a unit
// reported unplaceable (unit name to reason), given the placements of s and
// the globals eligible there. After a leader's pass this finds a plan that was
// not a fixpoint: a second pass would place the unit. what says when.
func (c *Cluster) checkUnplaceableIn(s *checkSnapshot, unplaceable map[string]string, what string) {
	placed := map[string][]*core.SchedUnit{}
	for _, p := range s.placements {
		if r := c.units[p.Unit]; r != nil {
			placed[p.Machine] = append(placed[p.Machine], &r.SchedUnit)
		}
	}
	units := c.machineUnits(s, placed)
	for _, n := range c.unitNames() {
		r := c.units[n]
		reason, reported := unplaceable[n]
		if !reported || r.Global || r.Invalid != "" || r.TargetState == core.Inactive {
			continue
		}
		for _, id := range s.ids {
			if couldTake(&r.SchedUnit, s.machines[id], units[id], c.replacesUnit) == "" {
				c.violate(InvPlacement, "%s reported unplaceable (%s)%s, but machine %s could take it", n, reason, what, id)
				break
			}
		}
	}
}

// replacers lists the submitted units with Replaces, sorted, rebuilt after a
// submit or destroy.
func (c *Cluster) replacers() []string {
	if c.replacing == nil {
		c.replacing = []string{}
		for _, n := range c.unitNames() {
			if len(c.units[n].Req.Replaces) > 0 {
				c.replacing = append(c.replacing, n)
			}
		}
	}
	return c.replacing
}
