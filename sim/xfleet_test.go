package sim

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

func TestReadXFleet(t *testing.T) {
	md := func(kv ...string) map[string][]string {
		out := map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = append(out[kv[i]], kv[i+1])
		}
		return out
	}
	for _, tc := range []struct {
		what, name, xfleet string
		want               core.Requirements
	}{
		{"MachineID beats both aliases, wherever it is", "a.service",
			"X-ConditionMachineBootID=boot\nX-ConditionMachineID=cond\nMachineID=id",
			core.Requirements{MachineID: "id", HasMachineID: true}},
		{"X-ConditionMachineID beats X-ConditionMachineBootID", "a.service",
			"X-ConditionMachineBootID=boot\nX-ConditionMachineID=cond",
			core.Requirements{MachineID: "cond", HasMachineID: true}},
		{"X-ConditionMachineBootID alone", "a.service", "X-ConditionMachineBootID=boot",
			core.Requirements{MachineID: "boot", HasMachineID: true}},
		{"only the first MachineID counts", "a.service", "MachineID=\"one\" \"two\"\nMachineID=three",
			core.Requirements{MachineID: "one", HasMachineID: true}},
		{"MachineID=%i on a unit that is no instance: empty, matches no machine", "a.service", "MachineID=%i",
			core.Requirements{MachineID: "", HasMachineID: true}},
		{"MachineID=%i on an instance", "a@0123abcd.service", "MachineID=%i",
			core.Requirements{MachineID: "0123abcd", HasMachineID: true}},
		{"quoted metadata: one value with a comma, and another key", "a.service",
			`MachineMetadata="role=back,front" "disk=ssd"`,
			core.Requirements{Metadata: md("role", "back,front", "disk", "ssd")}},
		{"metadata lines and the alias accumulate, each value once", "a.service",
			"MachineMetadata=role=front\nX-ConditionMachineMetadata=\"role=back\" \"role=front\"",
			core.Requirements{Metadata: md("role", "front", "role", "back")}},
		{"a value half quoted is one value, not key=value, and is skipped", "a.service",
			`MachineMetadata="a=b" c=d`, core.Requirements{}},
		{"metadata emptied by %i is dropped: no constraint", "web@.service",
			"MachineMetadata=region=%i", core.Requirements{}},
		{"metadata per instance", "web@eu.service", "MachineMetadata=region=%i\nMachineMetadata=%p=yes",
			core.Requirements{Metadata: md("region", "eu", "web", "yes")}},
		{"specifiers of an instance", "web@eu.service",
			"MachineOf=db@%i.service\nConflicts=%p@*.service %n\nReplaces=%N-old.service",
			core.Requirements{MachineOf: []string{"db@eu.service"}, Conflicts: []string{"web@*.service", "web@eu.service"}, Replaces: []string{"web@eu-old.service"}}},
		{"specifiers of a template", "web@.service", "Replaces=%p|%i|%N|%n",
			core.Requirements{Replaces: []string{"web||web@|web@.service"}}},
		{"prefix before the first '@', instance after it", "x@y@z.service", "Replaces=%p/%i/%N",
			core.Requirements{Replaces: []string{"x/y@z/x@y@z"}}},
		{"other specifiers and a lone '%' stay", "a@b.service", "Replaces=%H-%%i-%",
			core.Requirements{Replaces: []string{"%H-%b-%"}}},
		{"Conflicts split on whitespace, X-Conflicts too; Replaces not", "a.service",
			"Conflicts=b.service  c*.service\nX-Conflicts=d.service\nReplaces=e.service f.service",
			core.Requirements{Conflicts: []string{"b.service", "c*.service", "d.service"}, Replaces: []string{"e.service f.service"}}},
		{"MachineOf and its alias", "a.service", "MachineOf=b.service\nX-ConditionMachineOf=\"c.service\" \"d.service\"",
			core.Requirements{MachineOf: []string{"b.service", "c.service", "d.service"}}},
		{"Global: the last value wins, truthy in any case", "a.service", "Global=false\nGlobal=YES",
			core.Requirements{Global: true}},
		{"Global: anything else is false", "a.service", "Global=true\nGlobal=enabled",
			core.Requirements{}},
		{"options of other sections and unknown options are not read", "a.service", "Unknown=1",
			core.Requirements{}},
	} {
		contents := "[Unit]\nMachineID=not-this\n\n[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n" + tc.xfleet + "\n"
		got, err := readXFleet(tc.name, []byte(contents))
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %s with\n%s\nread as %+v, want %+v", tc.what, tc.name, tc.xfleet, got, tc.want)
		}
	}
}

func TestSplitQuoted(t *testing.T) {
	for v, want := range map[string][]string{
		`a=b`:                 {"a=b"},
		`"a=b" "c=d"`:         {"a=b", "c=d"},
		`"a=b c" "d"`:         {"a=b c", "d"},
		`"a"  "b"`:            {"a", "", "b"},
		`""`:                  {""},
		`"`:                   {`"`},
		`"a=b" c=d`:           {`"a=b" c=d`},
		`"role=back,front"`:   {"role=back,front"},
		`"x"y" "z"`:           {"xy z"},
		`"a=b" "c=d" "e=f g"`: {"a=b", "c=d", "e=f g"},
	} {
		if got := splitQuoted(v); !reflect.DeepEqual(got, want) {
			t.Errorf("splitQuoted(%s) = %q, want %q", v, got, want)
		}
	}
}

// TestEmptyMachineIDMatchesNoMachine: MachineID=%i on a unit that is not an
// instance leaves a requirement no machine meets, not none.
func TestEmptyMachineIDMatchesNoMachine(t *testing.T) {
	r, err := readXFleet("a.service", unitBody("MachineID=%i"))
	if err != nil {
		t.Fatal(err)
	}
	u := &core.SchedUnit{Unit: core.Unit{Name: "a.service"}, Req: r}
	for _, id := range []string{"", "m1", "0123456789abcdef"} {
		if why := couldTake(u, core.MachineState{ID: id}, nil, func(a, b string) bool { return false }); why == "" {
			t.Errorf("machine %q could take a unit whose MachineID expands to empty", id)
		}
	}
}

// TestCheckerReadsAsCore: units using every option, alias and specifier are
// read by the checker as core reads them.
func TestCheckerReadsAsCore(t *testing.T) {
	c := newTestCluster(t, 1, 2)
	for name, xfleet := range map[string]string{
		"a.service":           "MachineID=m1\nMachineMetadata=n=1",
		"b@x.service":         "X-ConditionMachineID=%i\nX-ConditionMachineBootID=m2\nMachineMetadata=\"n=%i\" \"z=%p\"",
		"c.service":           "X-ConditionMachineBootID=%i",
		"d@.service":          "MachineMetadata=n=%i\nConflicts=%p@*.service\nX-Conflicts=e*.service  f.service",
		"d@1.service":         "MachineMetadata=n=%i\nConflicts=%p@*.service\nX-Conflicts=e*.service  f.service",
		"e.service":           "MachineOf=a.service\nX-ConditionMachineOf=\"d@1.service\" \"%p-x.service\"",
		"f.service":           "Replaces=%N@*.service\nReplaces=a.service",
		"g.service":           "Global=yes\nGlobal=On\nX-ConditionMachineMetadata=n=2",
		"h@in-st.a.service":   "MachineMetadata=\"k=%i,%N\" \"j=%n\"\nMachineOf=x@%i.service",
		"i.service":           "Global=nope\nUnknownOption=1",
		"j.service":           "",
		"k@1.service":         "MachineMetadata=%i=%p\nMachineMetadata=\"n=1,2\"",
		"l.service":           "MachineMetadata=region=%i\nMachineMetadata=n=%i",
		"m@e7a1c4d0.service":  "MachineID=%i",
		"n@e7a1c4d0.service":  "MachineID=\"%i\" \"other\"",
		"o@x.y.z.path":        "Conflicts=%N %p %i",
		"p\\x2dq@r.s.service": "Replaces=%p\\x2d%i",
		"q.service":           "MachineID=\"\"\nX-ConditionMachineID=m1",
		"r.service":           "MachineOf=\"a.service\"  \"e.service\"",
		"s.service":           "Global=\"true\" \"\"\nMachineMetadata=\"n=1\"  \"z=2\"",
	} {
		if err := c.Submit(name, unitBody(xfleet)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, v := range c.Violations() {
		t.Error(v)
	}
}

// TestCheckReadingNamesUnitAndField: a disagreement between the readings is a
// broken invariant naming the unit and each field that differs.
func TestCheckReadingNamesUnitAndField(t *testing.T) {
	c := newTestCluster(t, 1, 1)
	mine := core.Requirements{MachineID: "", HasMachineID: true, Metadata: map[string][]string{"region": {"eu"}}, Conflicts: []string{"a", "b"}}
	theirs := core.Requirements{MachineID: "web", HasMachineID: true, Metadata: map[string][]string{"region": {"web"}}, Conflicts: []string{"b", "a", "a"}}
	c.checkReading("web@eu.service", mine, theirs, false)
	var got []string
	for _, v := range c.Violations() {
		if v.Invariant != InvReading || !strings.Contains(v.Detail, "web@eu.service") {
			t.Errorf("unexpected violation %v", v)
		}
		got = append(got, v.Detail)
	}
	want := []string{
		`web@eu.service: [X-Fleet] MachineID read as "" by the checker, "web" by core`,
		`web@eu.service: [X-Fleet] MachineMetadata read as {region=["eu"]} by the checker, {region=["web"]} by core`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
