package core

import (
	"errors"
	"path"
	"slices"
	"strings"
	"testing"
)

// FuzzRequirements checks [X-Fleet] parsing and validation on arbitrary
// options: it never panics, refuses with a RequirementsError, and what it
// accepts is consistent: no forbidden combination, every glob well formed,
// metadata keys and values non-empty and sorted, no conflict glob matching a
// peer; and expanding specifiers for a valid name keeps metadata non-empty,
// sorted and distinct, while Conflicts stays symmetric.
func FuzzRequirements(f *testing.F) {
	for _, s := range [][2]string{
		{"web@8080.service", "MachineMetadata=\"region=us\" \"disk=ssd\"\nConflicts=web@*.service db.service\n"},
		{"web.service", "MachineID=abc\nX-ConditionMachineBootID=def\n"},
		{"web.service", "MachineOf=db.service\nConflicts=db*\n"},
		{"web.service", "Global=true\nMachineMetadata=role=%i\n"},
		{"a@b.service", "Replaces=%p@*.service\nMachineOf=\"x.service y.service\"\n"},
		{"web.service", "Conflicts=[\nMachineMetadata=a==b\n"},
		{"web.service", "X-Unknown=1\nGlobal=\"yes no\"\n"},
		{"x@.service", "MachineMetadata=%i=%i\nMachineID=%N\n"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, body string) {
		var opts []Option
		for _, line := range strings.Split(body, "\n") {
			k, v, _ := strings.Cut(line, "=")
			opts = append(opts, Option{Section: XFleetSection, Name: k, Value: v})
		}
		r, err := ParseRequirements(name, NewUnitFile(opts))
		if err != nil {
			var re *RequirementsError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a RequirementsError", err, err)
			}
			return
		}
		checkRequirements(t, r)
		un, err := ParseUnitName(name)
		if err != nil {
			return
		}
		x := r.ForUnit(un)
		for k, vs := range x.Metadata {
			if k == "" || slices.Contains(vs, "") || !slices.IsSorted(vs) || len(slices.Compact(slices.Clone(vs))) != len(vs) {
				t.Fatalf("expanded metadata %q: %q is empty, unsorted or repeated", k, vs)
			}
		}
		if x.HasMachineID != r.HasMachineID || x.Global != r.Global || len(x.Conflicts) != len(r.Conflicts) {
			t.Fatalf("expansion changed the kind of requirements: %+v -> %+v", r, x)
		}
		other := Requirements{Conflicts: []string{"*"}}
		for _, b := range []string{"other.service", name} {
			if ConflictsWith(name, x, b, other) != ConflictsWith(b, other, name, x) {
				t.Fatalf("ConflictsWith(%q, %q) is not symmetric", name, b)
			}
		}
	})
}

// checkRequirements fails t unless accepted requirements are consistent.
func checkRequirements(t *testing.T, r Requirements) {
	t.Helper()
	switch {
	case r.HasMachineID && (len(r.MachineOf) > 0 || len(r.Conflicts) > 0 || r.Global || len(r.Replaces) > 0):
		t.Fatalf("MachineID accepted with other placement rules: %+v", r)
	case r.Global && (len(r.MachineOf) > 0 || len(r.Replaces) > 0):
		t.Fatalf("Global accepted with MachineOf or Replaces: %+v", r)
	case len(r.Conflicts) > 0 && len(r.Replaces) > 0:
		t.Fatalf("Conflicts accepted with Replaces: %+v", r)
	case !r.HasMachineID && r.MachineID != "":
		t.Fatalf("MachineID %q without HasMachineID", r.MachineID)
	}
	for _, g := range append(slices.Clone(r.Conflicts), r.Replaces...) {
		if _, err := path.Match(g, ""); err != nil {
			t.Fatalf("malformed glob %q accepted", g)
		}
	}
	for _, g := range r.Conflicts {
		if g == "" || strings.ContainsAny(g, " \t\n") {
			t.Fatalf("conflict glob %q is empty or holds white space", g)
		}
	}
	for k, vs := range r.Metadata {
		if k == "" || len(vs) == 0 || slices.Contains(vs, "") || !slices.IsSorted(vs) {
			t.Fatalf("metadata %q: %q has an empty or unsorted value", k, vs)
		}
	}
	for _, p := range r.MachineOf {
		for _, g := range append(slices.Clone(r.Conflicts), r.Replaces...) {
			if globMatch(g, p) {
				t.Fatalf("peer %q matches conflict or replace %q", p, g)
			}
		}
	}
}
