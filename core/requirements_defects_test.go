package core

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestMachineIDAliasPrecedence: MachineID wins over X-ConditionMachineID, which
// wins over X-ConditionMachineBootID, whatever their order in the file; within
// one name the first value is used, even an empty one (`MachineID=""`, like
// `MachineID=`, is a requirement no machine meets, as in fleet).
func TestMachineIDAliasPrecedence(t *testing.T) {
	cases := map[string]string{
		"X-ConditionMachineID=abc\nMachineID=def\n":                             "def",
		"X-ConditionMachineBootID=abc\nX-ConditionMachineID=def\n":              "def",
		"X-ConditionMachineBootID=abc\nX-ConditionMachineID=def\nMachineID=g\n": "g",
		"X-ConditionMachineBootID=abc\n":                                        "abc",
		"MachineID=a\nMachineID=b\n":                                            "a",
		"MachineID=\"\"\nX-ConditionMachineID=def\n":                            "",
	}
	for x, want := range cases {
		r, err := reqs(t, x)
		if err != nil || !r.HasMachineID || r.MachineID != want {
			t.Errorf("%q: MachineID = %q (set %v, err %v), want %q", x, r.MachineID, r.HasMachineID, err, want)
		}
	}
}

// TestEmptyMachineID: an empty MachineID is a requirement that no machine
// meets, refused with the rules a non-empty one is refused with.
func TestEmptyMachineID(t *testing.T) {
	for x, want := range map[string]string{
		"MachineID=\nGlobal=true\n":         "MachineID cannot be used with Global",
		"MachineID=\nMachineOf=b.service\n": "MachineID cannot be used with Peers",
		"MachineID=\nConflicts=b.service\n": "MachineID cannot be used with Conflicts",
		"MachineID=\nReplaces=b.service\n":  "MachineID cannot be used with Replaces",
		"MachineID=%i\nGlobal=true\n":       "MachineID cannot be used with Global",
	} {
		if _, err := reqs(t, x); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", x, err, want)
		}
	}
	w := newWorld(t, "m1", "m2").
		unit("empty.service", "MachineID=").
		unit("inst.service", "MachineID=%i").
		unit("web@1.service", "MachineID=%i").
		unit("free.service")
	expectPlan(t, w.apply(),
		"schedule free.service to m1",
		"unplaceable empty.service (its MachineID is empty and matches no machine)",
		"unplaceable inst.service (its MachineID is empty and matches no machine)",
		"unplaceable web@1.service (no live machine 1)")
	// A placement that an empty MachineID breaks is removed.
	w.snap.Placements = append(w.snap.Placements, Placement{Unit: "empty.service", Machine: "m2", Hash: w.find("empty.service").Hash, TargetState: Launched})
	expectPlan(t, w.apply(),
		"unschedule empty.service from m2 (its MachineID is empty and matches no machine; no eligible machine)",
		"unplaceable empty.service (its MachineID is empty and matches no machine)",
		"unplaceable inst.service (its MachineID is empty and matches no machine)",
		"unplaceable web@1.service (no live machine 1)")
}

// TestEmptyMetadataValueDropped: a MachineMetadata value that a specifier
// leaves empty is dropped, as fleet drops it; a key with no value left does not
// constrain the machine.
func TestEmptyMetadataValueDropped(t *testing.T) {
	r, err := reqs(t, "MachineMetadata=hostname=%i\nMachineMetadata=\"role=%i\" \"role=db\"\nMachineMetadata=%i=x\n")
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := ParseUnitName("u.service")
	if got, want := r.ForUnit(plain).Metadata, map[string][]string{"role": {"db"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("on a non-instance: metadata = %v, want %v", got, want)
	}
	inst, _ := ParseUnitName("u@a.service")
	if got, want := r.ForUnit(inst).Metadata, map[string][]string{"hostname": {"a"}, "role": {"a", "db"}, "a": {"x"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("on an instance: metadata = %v, want %v", got, want)
	}
	w := newWorld(t, "m1:hostname=m1").unit("u.service", "MachineMetadata=hostname=%i")
	expectPlan(t, w.apply(), "schedule u.service to m1")
}

// TestPeerMatchesReplace: a MachineOf peer matched by a Replaces glob is
// refused with fleet's message.
func TestPeerMatchesReplace(t *testing.T) {
	_, err := reqs(t, "MachineOf=web.service\nReplaces=web*\n")
	if want := `unresolvable requirements: peer "web.service" matches replace "web*"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestMetadataCacheKeyIsUnambiguous: one value "x,y" and two values "x" and
// "y" are different requirements, whichever is evaluated first.
func TestMetadataCacheKeyIsUnambiguous(t *testing.T) {
	w := newWorld(t, "m1:role=x", "m2:role=y").
		unit("a.service", "MachineMetadata=role=x,y").
		unit("b.service", `MachineMetadata="role=x" "role=y"`)
	expectPlan(t, w.apply(),
		"schedule b.service to m1",
		"unplaceable a.service (no live machine matches its metadata)")
	for _, pair := range [][2]map[string][]string{
		{{"role": {"x,y"}}, {"role": {"x", "y"}}},
		{{"a": {"b;c=d"}}, {"a": {"b"}, "c": {"d"}}},
		{{"a=b": {"c"}}, {"a": {"b=c"}}},
	} {
		if metadataKey(pair[0]) == metadataKey(pair[1]) {
			t.Errorf("%v and %v share the cache key %q", pair[0], pair[1], metadataKey(pair[0]))
		}
	}
}

// TestEmptyUnitRefused: a unit with no options is refused, as fleet's API
// refuses one with an empty options field.
func TestEmptyUnitRefused(t *testing.T) {
	for _, data := range []string{"", "\n\n", "# only a comment\n", "[Service]\n"} {
		_, err := PrepareUnit("e.service", []byte(data))
		var ue *UnitFileError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no options") {
			t.Errorf("%q: err = %v, want a UnitFileError saying the unit has no options", data, err)
		}
	}
}

// TestNameLengthLimit: 255 bytes is the longest name a file system or systemd
// takes.
func TestNameLengthLimit(t *testing.T) {
	ok := strings.Repeat("a", 255-len(".service")) + ".service"
	if err := ValidateName(ok); err != nil {
		t.Errorf("a 255-byte name was refused: %v", err)
	}
	if err := ValidateName("a" + ok); err == nil || !strings.Contains(err.Error(), "255") {
		t.Errorf("a 256-byte name: err = %v, want a refusal naming the 255-byte limit", err)
	}
}

// TestQuotedValuesKeepEmptyPieces: fleet splits a quoted multi-value on every
// space outside quotes and keeps the empty pieces that leaves.
func TestQuotedValuesKeepEmptyPieces(t *testing.T) {
	r, err := reqs(t, "MachineOf=\"a.service\"  \"b.service\"\nGlobal=false\n")
	if err != nil || !reflect.DeepEqual(r.MachineOf, []string{"a.service", "", "b.service"}) {
		t.Errorf("MachineOf = %q (err %v), want a.service, \"\", b.service", r.MachineOf, err)
	}
	if r, err := reqs(t, "Global=\"true\" \"\"\n"); err != nil || r.Global {
		t.Errorf("Global=\"true\" \"\": Global %v (err %v), want false: the last value decides", r.Global, err)
	}
	r, err = reqs(t, "MachineMetadata=\"a=1\"  \"b=2\"\n")
	if err != nil || !reflect.DeepEqual(r.Metadata, map[string][]string{"a": {"1"}, "b": {"2"}}) {
		t.Errorf("MachineMetadata with two spaces: %v (err %v), want a=1 and b=2", r.Metadata, err)
	}
}
