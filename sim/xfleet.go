package sim

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/fleet-rebuild/fleet/core"
)

// The checker's own reading of a unit's [X-Fleet] section (fleet-compat.md
// §4.1, §4.2), written from the spec and not from core's requirement parser
// or specifier expansion, so that a bug there shows: as a disagreement that
// checkReading reports, and as placements the checker refuses. Only
// go-systemd's option splitter is shared. core.Requirements is used as a
// plain container, so the rules of rules.go read either.

// Each option under every name fleet accepts for it. The MachineID names are
// in fleet's order of precedence: the first that has a value decides.
var (
	machineIDNames = []string{"MachineID", "X-ConditionMachineID", "X-ConditionMachineBootID"}
	machineOfNames = []string{"MachineOf", "X-ConditionMachineOf"}
	metadataNames  = []string{"MachineMetadata", "X-ConditionMachineMetadata"}
	conflictsNames = []string{"Conflicts", "X-Conflicts"}
)

// readXFleet reads the [X-Fleet] section of the unit name's contents, with the
// specifiers %n %N %p %i expanded for name. Values core would refuse (a
// metadata value that is not key=value) are skipped, as fleet skips them: the
// checker reads only units core accepted.
func readXFleet(name string, contents []byte) (core.Requirements, error) {
	// systemd reads CRLF as LF and skips a leading byte order mark.
	data := bytes.ReplaceAll(bytes.TrimPrefix(contents, []byte("\ufeff")), []byte("\r\n"), []byte("\n"))
	opts, err := unit.DeserializeOptions(bytes.NewReader(data))
	if err != nil {
		return core.Requirements{}, fmt.Errorf("sim: read [X-Fleet] of %s: %w", name, err)
	}
	values := map[string][]string{} // option name as written → its values, in order
	for _, o := range opts {
		if o.Section == "X-Fleet" {
			values[o.Name] = append(values[o.Name], splitQuoted(o.Value)...)
		}
	}
	n := splitName(name)
	all := func(names []string) []string {
		var out []string
		for _, on := range names {
			for _, v := range values[on] {
				out = append(out, n.expand(v))
			}
		}
		return out
	}
	var r core.Requirements
	for _, on := range machineIDNames {
		if vs := values[on]; len(vs) > 0 {
			r.MachineID, r.HasMachineID = n.expand(vs[0]), true
			break
		}
	}
	r.MachineOf = all(machineOfNames)
	for _, v := range all(metadataNames) {
		kv := strings.Split(v, "=")
		if len(kv) != 2 || kv[0] == "" || kv[1] == "" {
			continue
		}
		if r.Metadata == nil {
			r.Metadata = map[string][]string{}
		}
		r.Metadata[kv[0]] = addOnce(r.Metadata[kv[0]], kv[1])
	}
	for _, v := range all(conflictsNames) {
		r.Conflicts = append(r.Conflicts, strings.Fields(v)...)
	}
	r.Replaces = all([]string{"Replaces"})
	if g := values["Global"]; len(g) > 0 {
		switch strings.ToLower(strings.TrimSpace(g[len(g)-1])) {
		case "true", "yes", "1", "on", "t":
			r.Global = true
		}
	}
	return r, nil
}

// splitQuoted is fleet's multi-value rule: a value that starts and ends with
// '"' is split at every space outside quotes, and every quote is dropped; any
// other value is one value. As in fleet, a split keeps empty pieces (two
// spaces in a row, or `""`).
func splitQuoted(v string) []string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return []string{v}
	}
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// addOnce appends v to set unless it is there already.
func addOnce(set []string, v string) []string {
	for _, s := range set {
		if s == v {
			return set
		}
	}
	return append(set, v)
}

// unitNameParts are what the specifiers of a unit name expand to.
type unitNameParts struct {
	full, noSuffix, prefix, instance string
}

// splitName splits a valid unit name: %N is the name without the text from
// its last '.'; %p is the text before the first '@' (the whole of %N without
// one); %i is the text after the first '@' (empty without one).
func splitName(name string) unitNameParts {
	p := unitNameParts{full: name, noSuffix: name}
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		p.noSuffix = name[:dot]
	}
	p.prefix = p.noSuffix
	if at := strings.IndexByte(p.noSuffix, '@'); at >= 0 {
		p.prefix, p.instance = p.noSuffix[:at], p.noSuffix[at+1:]
	}
	return p
}

// expand replaces %n %N %p %i in v, left to right; any other '%' stays.
func (p unitNameParts) expand(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+1 < len(v) {
			if s, ok := p.specifier(v[i+1]); ok {
				b.WriteString(s)
				i++
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// specifier is what %c expands to, if c names a specifier fleet knows.
func (p unitNameParts) specifier(c byte) (string, bool) {
	switch c {
	case 'n':
		return p.full, true
	case 'N':
		return p.noSuffix, true
	case 'p':
		return p.prefix, true
	case 'i':
		return p.instance, true
	}
	return "", false
}

// checkReading reports, as a broken invariant, every field of unit name's
// requirements on which the checker's reading (mine) and core's (theirs, with
// theirGlobal from core's unit record) differ. Lists compare as sets: their
// order does not change where a unit may run.
func (c *Cluster) checkReading(name string, mine, theirs core.Requirements, theirGlobal bool) {
	differ := func(field string, m, t any) {
		c.violate(InvReading, "%s: [X-Fleet] %s read as %v by the checker, %v by core", name, field, m, t)
	}
	if mine.HasMachineID != theirs.HasMachineID || mine.MachineID != theirs.MachineID {
		differ("MachineID", idString(mine), idString(theirs))
	}
	for _, f := range []struct {
		field       string
		mine, their []string
	}{
		{"MachineOf", mine.MachineOf, theirs.MachineOf},
		{"Conflicts", mine.Conflicts, theirs.Conflicts},
		{"Replaces", mine.Replaces, theirs.Replaces},
	} {
		if m, t := setString(f.mine), setString(f.their); m != t {
			differ(f.field, m, t)
		}
	}
	if m, t := requiredString(mine.Metadata), requiredString(theirs.Metadata); m != t {
		differ("MachineMetadata", m, t)
	}
	if mine.Global != theirs.Global || mine.Global != theirGlobal {
		differ("Global", mine.Global, fmt.Sprintf("%v (unit record %v)", theirs.Global, theirGlobal))
	}
}

// idString renders a MachineID requirement, "none" if there is none.
func idString(r core.Requirements) string {
	if !r.HasMachineID {
		return "none"
	}
	return fmt.Sprintf("%q", r.MachineID)
}

// setString renders a list as its sorted distinct values.
func setString(vs []string) string {
	var set []string
	for _, v := range vs {
		set = addOnce(set, v)
	}
	sort.Strings(set)
	return fmt.Sprintf("%q", set)
}

// requiredString renders metadata requirements as sorted key=value sets; a
// key with no value does not constrain, and is left out.
func requiredString(md map[string][]string) string {
	var keys []string
	for k, vs := range md {
		if len(vs) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + setString(md[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}
