package core

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// XFleetSection is the name of fleet's section in unit files.
const XFleetSection = "X-Fleet"

// Requirements are a unit's placement rules from its [X-Fleet] section.
type Requirements struct {
	// MachineID: run only on the machine with this full or 8-char short ID.
	MachineID string
	// HasMachineID: MachineID is required, even when empty (which no machine
	// matches: the unit is never scheduled).
	HasMachineID bool
	// MachineOf: run only on a machine where all these units are scheduled.
	MachineOf []string
	// Metadata: for every key, the machine's value must be one of these.
	Metadata map[string][]string
	// Conflicts: globs of units this one must never share a machine with (symmetric).
	Conflicts []string
	// Global: run on every machine that matches Metadata and has no conflict.
	Global bool
	// Replaces: globs of units this one displaces from its machine.
	Replaces []string
	// Unknown lists [X-Fleet] option names fleet does not know (accepted, warned about).
	Unknown []string
}

// optionAliases maps every accepted [X-Fleet] option name, current or deprecated,
// to its canonical name.
var optionAliases = map[string]string{
	"MachineID":                  "MachineID",
	"X-ConditionMachineID":       "MachineID",
	"X-ConditionMachineBootID":   "MachineID",
	"MachineOf":                  "MachineOf",
	"X-ConditionMachineOf":       "MachineOf",
	"MachineMetadata":            "MachineMetadata",
	"X-ConditionMachineMetadata": "MachineMetadata",
	"Conflicts":                  "Conflicts",
	"X-Conflicts":                "Conflicts",
	"Global":                     "Global",
	"Replaces":                   "Replaces",
}

// machineIDNames are the names of the MachineID option, in fleet's order of
// precedence: the first of them that has a value decides, wherever it is in
// the file.
var machineIDNames = []string{"MachineID", "X-ConditionMachineID", "X-ConditionMachineBootID"}

// ParseRequirements reads the [X-Fleet] section of uf, for the unit named unitName
// (used in errors), and checks it: malformed values and invalid combinations are
// errors. Specifiers are not expanded here; see Requirements.ForUnit.
func ParseRequirements(unitName string, uf *UnitFile) (Requirements, error) {
	var r Requirements
	var globals []string
	machineIDs := map[string][]string{}
	for _, o := range uf.Section(XFleetSection) {
		canon, ok := optionAliases[o.Name]
		if !ok {
			r.Unknown = append(r.Unknown, o.Name)
			continue
		}
		values := splitValues(o.Value)
		switch canon {
		case "MachineID":
			machineIDs[o.Name] = append(machineIDs[o.Name], values...)
		case "MachineOf":
			r.MachineOf = append(r.MachineOf, values...)
		case "MachineMetadata":
			for _, v := range values {
				if v == "" {
					continue // fleet drops a value without '=', as the space between two values leaves
				}
				k, val, ok := strings.Cut(v, "=")
				if !ok || k == "" || val == "" || strings.Contains(val, "=") {
					return Requirements{}, &RequirementsError{Unit: unitName, Option: o.Name, Reason: fmt.Sprintf("value %q is not key=value", v)}
				}
				if r.Metadata == nil {
					r.Metadata = map[string][]string{}
				}
				r.Metadata[k] = append(r.Metadata[k], val)
			}
		case "Conflicts":
			for _, v := range values {
				r.Conflicts = append(r.Conflicts, strings.Fields(v)...)
			}
		case "Global":
			globals = append(globals, values...)
		case "Replaces":
			r.Replaces = append(r.Replaces, values...)
		}
	}
	for _, n := range machineIDNames {
		if ids := machineIDs[n]; len(ids) > 0 {
			r.MachineID, r.HasMachineID = ids[0], true
			break
		}
	}
	if len(globals) > 0 {
		r.Global = truthy(globals[len(globals)-1])
	}
	for k := range r.Metadata {
		sort.Strings(r.Metadata[k])
	}
	if err := r.validate(unitName); err != nil {
		return Requirements{}, err
	}
	return r, nil
}

// splitValues applies fleet's multi-value rule: a value that starts and ends with
// '"' is split on spaces outside quotes, and the quotes are dropped. As in fleet,
// every space between values ends one, so `"a"  "b"` is "a", "" and "b", and
// `""` is one empty value: an empty MachineID then matches no machine, an
// empty MachineOf peer is never placed, and an empty last Global is false.
func splitValues(v string) []string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return []string{v}
	}
	var out []string
	var cur strings.Builder
	quoted := false
	for _, c := range v {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(c)
		}
	}
	return append(out, cur.String())
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "1", "on", "t":
		return true
	}
	return false
}

// validate rejects the combinations fleet's API rejects, with its messages.
func (r Requirements) validate(unit string) error {
	bad := func(reason string) error { return &RequirementsError{Unit: unit, Reason: reason} }
	switch {
	case r.HasMachineID && len(r.MachineOf) > 0:
		return bad("MachineID cannot be used with Peers")
	case r.HasMachineID && len(r.Conflicts) > 0:
		return bad("MachineID cannot be used with Conflicts")
	case r.HasMachineID && r.Global:
		return bad("MachineID cannot be used with Global")
	case r.HasMachineID && len(r.Replaces) > 0:
		return bad("MachineID cannot be used with Replaces")
	case r.Global && len(r.MachineOf) > 0:
		return bad("Global cannot be used with Peers")
	case r.Global && len(r.Replaces) > 0:
		return bad("Global cannot be used with Replaces")
	case len(r.Conflicts) > 0 && len(r.Replaces) > 0:
		return bad("Conflicts cannot be used with Replaces")
	}
	for _, globs := range [][]string{r.Conflicts, r.Replaces} {
		for _, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				return bad(fmt.Sprintf("malformed glob %q", g))
			}
		}
	}
	for _, peer := range r.MachineOf {
		for _, g := range r.Conflicts {
			if globMatch(g, peer) {
				return bad(fmt.Sprintf("unresolvable requirements: peer %q matches conflict %q", peer, g))
			}
		}
		for _, g := range r.Replaces {
			if globMatch(g, peer) {
				return bad(fmt.Sprintf("unresolvable requirements: peer %q matches replace %q", peer, g))
			}
		}
	}
	return nil
}

// globMatch is path.Match with malformed patterns treated as no match (patterns
// are checked at parse time).
func globMatch(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

// hasSpecifiers reports whether any value may hold a specifier ('%').
func (r Requirements) hasSpecifiers() bool {
	has := func(vs []string) bool {
		for _, v := range vs {
			if strings.Contains(v, "%") {
				return true
			}
		}
		return false
	}
	if strings.Contains(r.MachineID, "%") || has(r.MachineOf) || has(r.Conflicts) || has(r.Replaces) {
		return true
	}
	for k, vs := range r.Metadata {
		if strings.Contains(k, "%") || has(vs) {
			return true
		}
	}
	return false
}

// ForUnit returns a copy of r with the specifiers %n %N %p %i expanded for name.
// As in fleet, a metadata key or value left empty by the expansion (%i on a
// unit that is not an instance) is dropped, and a key with no value left does
// not constrain the machine; an empty MachineID stays a requirement that no
// machine meets.
func (r Requirements) ForUnit(name UnitName) Requirements {
	x := func(vs []string) []string {
		if vs == nil {
			return nil
		}
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = name.ExpandSpecifiers(v)
		}
		return out
	}
	out := r
	out.MachineID = name.ExpandSpecifiers(r.MachineID)
	out.MachineOf = x(r.MachineOf)
	out.Conflicts = x(r.Conflicts)
	out.Replaces = x(r.Replaces)
	if r.Metadata != nil {
		out.Metadata = expandMetadata(name, r.Metadata)
	}
	return out
}

// expandMetadata expands specifiers in metadata keys and values, dropping the
// ones left empty; values stay sorted and distinct.
func expandMetadata(name UnitName, md map[string][]string) map[string][]string {
	out := make(map[string][]string, len(md))
	for k, vs := range md {
		k = name.ExpandSpecifiers(k)
		if k == "" {
			continue
		}
		for _, v := range vs {
			if v = name.ExpandSpecifiers(v); v != "" && !contains(out[k], v) {
				out[k] = append(out[k], v)
			}
		}
	}
	for _, vs := range out {
		sort.Strings(vs)
	}
	return out
}

// ConflictsWith reports whether units a and b (with their requirements) may not
// share a machine: either one's Conflicts globs match the other's name. A unit
// never conflicts with itself.
func ConflictsWith(a string, ra Requirements, b string, rb Requirements) bool {
	if a == b {
		return false
	}
	for _, g := range ra.Conflicts {
		if globMatch(g, b) {
			return true
		}
	}
	for _, g := range rb.Conflicts {
		if globMatch(g, a) {
			return true
		}
	}
	return false
}
