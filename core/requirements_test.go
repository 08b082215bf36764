package core

import (
	"reflect"
	"strings"
	"testing"
)

func reqs(t *testing.T, xfleet string) (Requirements, error) {
	t.Helper()
	uf, err := ParseUnitFile("u.service", []byte("[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n"+xfleet))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return ParseRequirements("u.service", uf)
}

func TestParseRequirements(t *testing.T) {
	r, err := reqs(t, "MachineMetadata=\"region=us\" \"disk=ssd\"\nMachineMetadata=region=eu\nX-Conflicts=web*.service db.service\nConflicts=cache.service\nMachineOf=peer.service\nGlobal=false\nFoo=bar\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"region": {"eu", "us"}, "disk": {"ssd"}}
	if !reflect.DeepEqual(r.Metadata, want) {
		t.Errorf("metadata = %v, want %v", r.Metadata, want)
	}
	if !reflect.DeepEqual(r.Conflicts, []string{"web*.service", "db.service", "cache.service"}) {
		t.Errorf("conflicts = %v", r.Conflicts)
	}
	if !reflect.DeepEqual(r.MachineOf, []string{"peer.service"}) || r.Global || !reflect.DeepEqual(r.Unknown, []string{"Foo"}) {
		t.Errorf("requirements = %+v", r)
	}
	g, _ := reqs(t, "Global=no\nGlobal=Yes\n")
	if !g.Global {
		t.Error("last Global value should win")
	}
	id, _ := reqs(t, "X-ConditionMachineID=abc\nMachineID=def\n")
	if id.MachineID != "def" {
		t.Errorf("MachineID should win over X-ConditionMachineID, got %q", id.MachineID)
	}
}

func TestInvalidCombinations(t *testing.T) {
	cases := map[string]string{
		"MachineID=a\nMachineOf=b.service\n":        "MachineID cannot be used with Peers",
		"MachineID=a\nConflicts=b.service\n":        "MachineID cannot be used with Conflicts",
		"MachineID=a\nGlobal=true\n":                "MachineID cannot be used with Global",
		"MachineID=a\nReplaces=b.service\n":         "MachineID cannot be used with Replaces",
		"Global=true\nMachineOf=b.service\n":        "Global cannot be used with Peers",
		"Global=true\nReplaces=b.service\n":         "Global cannot be used with Replaces",
		"Conflicts=a.service\nReplaces=b.service\n": "Conflicts cannot be used with Replaces",
		"MachineOf=web.service\nConflicts=web*\n":   `unresolvable requirements: peer "web.service" matches conflict "web*"`,
		"MachineMetadata=novalue\n":                 `value "novalue" is not key=value`,
		"MachineMetadata=\"a=b\" c=d\n":             "is not key=value",
		"Conflicts=[\n":                             "malformed glob",
	}
	for x, want := range cases {
		_, err := reqs(t, x)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", x, err, want)
		}
	}
	for _, ok := range []string{"Global=true\nConflicts=a.service\n", "Global=true\nMachineMetadata=a=b\n", "MachineID=a\nMachineMetadata=a=b\n", "Global=false\nMachineID=x\n"} {
		if _, err := reqs(t, ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
}

func TestSpecifiersAndRelations(t *testing.T) {
	r, _ := reqs(t, "Conflicts=%p@*.service\nMachineOf=db@%i.service\n")
	n, _ := ParseUnitName("web@1.service")
	x := r.ForUnit(n)
	if x.Conflicts[0] != "web@*.service" || x.MachineOf[0] != "db@1.service" {
		t.Errorf("expanded = %+v", x)
	}
	if r.Conflicts[0] != "%p@*.service" {
		t.Error("ForUnit modified the original")
	}
	if !ConflictsWith("web@1.service", x, "web@2.service", Requirements{}) || !ConflictsWith("web@2.service", Requirements{}, "web@1.service", x) {
		t.Error("conflicts should be symmetric")
	}
	if ConflictsWith("web@1.service", x, "web@1.service", x) {
		t.Error("a unit never conflicts with itself")
	}
}

func TestMachineMatching(t *testing.T) {
	m := MachineState{ID: "0123456789abcdef", Metadata: map[string]string{"region": "us", "disk": "ssd"}}
	if !m.MatchID("0123456789abcdef") || !m.MatchID("01234567") || m.MatchID("0123") || m.MatchID("") {
		t.Error("MatchID: full and 8-char short IDs only")
	}
	if !m.MatchMetadata(map[string][]string{"region": {"eu", "us"}, "disk": {"ssd"}}) {
		t.Error("metadata should match (OR within a key, AND across keys)")
	}
	if m.MatchMetadata(map[string][]string{"region": {"us"}, "gpu": {"yes"}}) {
		t.Error("a missing key must not match")
	}
}
