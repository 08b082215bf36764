package api

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

// apiCase is one request to a fresh fixture and what must come of it.
type apiCase struct {
	name   string
	method string
	path   string
	ctype  []string // Content-Type values; nil: application/json when there is a body
	body   string
	code   int
	want   string // the JSON body, <hash:NAME> expanded; "" for an empty body
	allow  string // the Allow header of a 405
	// after checks the registry after a successful write; nil means nothing
	// stored may change.
	after func(t *testing.T, before, after snapshot)
}

// runCases runs every case on every backend, each on a fresh fixture, and
// checks the code, body, common headers and the registry before and after.
func runCases(t *testing.T, cases []apiCase) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { runCase(t, backend, c) })
			}
		})
	}
}

func runCase(t *testing.T, backend string, c apiCase) {
	f := newFixture(t, backend, nil)
	before := f.snapshot(t)
	hdr := http.Header{}
	ctype := c.ctype
	if ctype == nil && c.body != "" {
		ctype = []string{"application/json"}
	}
	for _, v := range ctype {
		hdr.Add("Content-Type", v)
	}
	a := f.do(t, c.method, c.path, hdr, c.body)
	if a.code != c.code {
		t.Fatalf("%s %s: code %d, want %d; body %s", c.method, c.path, a.code, c.code, a.body)
	}
	if got := a.header.Get("Server"); got != "fleetd/"+testVersion {
		t.Errorf("Server header %q, want fleetd/%s", got, testVersion)
	}
	if got := a.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	if c.want == "" && a.body != "" {
		t.Errorf("body %q, want none", a.body)
	}
	if c.want != "" {
		sameJSON(t, a.body, f.expand(c.want))
	}
	if c.allow != "" && a.header.Get("Allow") != c.allow {
		t.Errorf("Allow %q, want %q", a.header.Get("Allow"), c.allow)
	}
	after := f.snapshot(t)
	if c.after != nil {
		c.after(t, before, after)
	} else if !reflect.DeepEqual(before, after) {
		t.Fatalf("the registry changed:\n before %+v\n after  %+v", before, after)
	}
}

// unitJSON is the Unit entity of a fixture unit (or any unit with the same
// kind of options); current and machine may be empty.
func unitJSON(name, desired, current, machine string) string {
	var opts []string
	for _, o := range fixtureOptions(name) {
		opts = append(opts, fmt.Sprintf(`{"section":%q,"name":%q,"value":%q}`, o.Section, o.Name, o.Value))
	}
	s := fmt.Sprintf(`{"name":%q,"options":[%s],"desiredState":%q`, name, strings.Join(opts, ","), desired)
	if current != "" {
		s += fmt.Sprintf(`,"currentState":%q`, current)
	}
	if machine != "" {
		s += fmt.Sprintf(`,"machineID":%q`, machine)
	}
	return s + "}"
}

// stateJSON is the UnitState entity of a fixture state.
func stateJSON(name, machine string, launched bool) string {
	active, sub := "inactive", "dead"
	if launched {
		active, sub = "active", "running"
	}
	return fmt.Sprintf(`{"name":%q,"hash":"<hash:%s>","machineID":%q,"systemdLoadState":"loaded","systemdActiveState":%q,"systemdSubState":%q}`,
		name, name, machine, active, sub)
}

// wantStored returns a check that unit name is stored with target state and
// canonical contents, and that nothing else changed but the unit's
// placements mirroring it.
func wantStored(name string, target core.JobState, contents string) func(t *testing.T, before, after snapshot) {
	return func(t *testing.T, before, after snapshot) {
		t.Helper()
		u, got, ok := after.unit(name)
		if !ok {
			t.Fatalf("unit %s not stored", name)
		}
		if u.TargetState != target || got != contents {
			t.Fatalf("unit %s stored with target %q and contents %q; want %q and %q", name, u.TargetState, got, target, contents)
		}
		wantOthersUnchanged(t, before, after, name)
	}
}

// wantGone checks that unit name was removed and nothing else changed.
func wantGone(name string) func(t *testing.T, before, after snapshot) {
	return func(t *testing.T, before, after snapshot) {
		t.Helper()
		if _, _, ok := after.unit(name); ok {
			t.Fatalf("unit %s still stored", name)
		}
		wantOthersUnchanged(t, before, after, name)
	}
}

// wantOthersUnchanged compares the snapshots without unit name, its contents
// and placements.
func wantOthersUnchanged(t *testing.T, before, after snapshot, name string) {
	t.Helper()
	strip := func(s snapshot) snapshot {
		s.Units = slices.DeleteFunc(slices.Clone(s.Units), func(x core.Unit) bool { return x.Name == name })
		contents := map[core.Hash]string{}
		for _, x := range s.Units {
			contents[x.Hash] = s.Contents[x.Hash]
		}
		s.Contents = contents
		s.Placements = slices.DeleteFunc(slices.Clone(s.Placements), func(p core.Placement) bool { return p.Unit == name })
		return s
	}
	if b, a := strip(before), strip(after); !reflect.DeepEqual(b, a) {
		t.Fatalf("more than unit %s changed:\n before %+v\n after  %+v", name, b, a)
	}
}

// wantMetadata checks the merged metadata of machine id and that nothing but
// machine metadata changed.
func wantMetadata(id string, want map[string]string) func(t *testing.T, before, after snapshot) {
	return func(t *testing.T, before, after snapshot) {
		t.Helper()
		if got := after.machine(id).Metadata; !reflect.DeepEqual(got, want) {
			t.Fatalf("machine %s metadata %v, want %v", id, got, want)
		}
		before.Machines, after.Machines = nil, nil
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("more than machine metadata changed:\n before %+v\n after  %+v", before, after)
		}
	}
}
