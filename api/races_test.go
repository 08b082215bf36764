package api

import (
	"testing"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

// TestPutRaces: a PUT whose unit is destroyed (and recreated) by someone
// else between two of its registry calls starts over, a bounded number of
// times.
func TestPutRaces(t *testing.T) {
	for _, c := range []struct {
		name     string
		at       string // the call before which the unit is destroyed
		times    int    // how many times
		recreate bool   // the unit is created again before each CreateUnit
		code     int
	}{
		{"destroyed before the read", "Unit", 1, false, 201},
		{"destroyed before the replace", "ReplaceUnit", 1, false, 201},
		{"destroyed and recreated again and again", "Unit", putRounds, true, 409},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "memory", nil)
			reg := f.reg.(*memory.Registry)
			left, busy := c.times, false
			reg.SetFaults(memory.Faults{Fail: func(op, _ string) error {
				if busy || left == 0 {
					return nil
				}
				busy = true
				defer func() { busy = false }()
				switch {
				case op == c.at:
					left--
					return reg.DestroyUnit(t.Context(), "idle.service")
				case op == "CreateUnit" && c.recreate:
					u, contents := fixtureUnit(t, "idle.service")
					return reg.CreateUnit(t.Context(), u, contents)
				}
				return nil
			}})
			a := f.do(t, "PUT", "/fleet/v1/units/idle.service", jsonCT, optionsBody("/bin/false"))
			if a.code != c.code {
				t.Fatalf("PUT: %d %s, want %d", a.code, a.body, c.code)
			}
			if left != 0 {
				t.Fatalf("the unit was destroyed %d times, want %d", c.times-left, c.times)
			}
			reg.SetFaults(memory.Faults{})
			u, contents, ok := f.snapshot(t).unit("idle.service")
			if c.code == 201 && (!ok || contents != execContents("/bin/false") || u.TargetState != core.Inactive) {
				t.Fatalf("after PUT: unit %+v %q stored %v", u, contents, ok)
			}
		})
	}
}

// fixtureUnit is the fixture unit name as stored.
func fixtureUnit(t *testing.T, name string) (core.Unit, []byte) {
	t.Helper()
	sub, err := core.PrepareUnit(name, core.NewUnitFile(fixtureOptions(name)).Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return sub.Unit, sub.File.Bytes()
}

// TestGetDuringReplace: a unit replaced between the read of the unit and the
// read of its contents is answered with its new contents; one destroyed
// meanwhile is a 404 alone and left out of a listing.
func TestGetDuringReplace(t *testing.T) {
	newIdle := `{"name":"idle.service","options":[{"section":"Service","name":"ExecStart","value":"/bin/new"}],"desiredState":"loaded","currentState":"inactive"}`
	page2 := "/fleet/v1/units?nextPageToken=" + (PageToken{Limit: 1, Page: 2}).Encode() // idle.service alone
	next := `"nextPageToken":"` + (PageToken{Limit: 1, Page: 3}).Encode() + `"`
	for _, c := range []struct {
		path    string
		destroy bool
		code    int
		want    string
	}{
		{"/fleet/v1/units/idle.service", false, 200, newIdle},
		{page2, false, 200, `{"units":[` + newIdle + `],` + next + `}`},
		{"/fleet/v1/units/idle.service", true, 404, errJSON(404, "unit does not exist")},
		{page2, true, 200, `{` + next + `}`},
	} {
		f := newFixture(t, "memory", func(cfg *Config) { cfg.TokenLimit = 1 })
		reg := f.reg.(*memory.Registry)
		done := false
		reg.SetFaults(memory.Faults{Fail: func(op, _ string) error {
			if op != "UnitContents" || done {
				return nil
			}
			done = true
			if c.destroy {
				return reg.DestroyUnit(t.Context(), "idle.service")
			}
			uf := core.NewUnitFile([]core.Option{{Section: "Service", Name: "ExecStart", Value: "/bin/new"}})
			return reg.ReplaceUnit(t.Context(), core.Unit{Name: "idle.service", Hash: uf.Hash(), TargetState: core.Loaded}, uf.Bytes())
		}})
		a := f.do(t, "GET", c.path, nil, "")
		if a.code != c.code || !done {
			t.Fatalf("GET %s (destroy %v): %d %s, interfered %v", c.path, c.destroy, a.code, a.body, done)
		}
		sameJSON(t, a.body, c.want)
	}
}
