package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

const (
	testVersion = "1.0.0-test"
	testTTL     = time.Hour
)

// fixture is a registry holding a small cluster, and the handler over it:
//
//	machines  m1 (10.0.0.1, region=us disk=ssd), m2 (10.0.0.2, region=eu)
//	units     global.service   global, launched; states on m1 and m2
//	          idle.service     inactive, not placed
//	          loaded.service   loaded, placed on m2; state on m2 (not launched)
//	          moved.service    launched, placed on m2; states on m1 (stale) and m2
//	          placed.service   launched, placed on m1; state on m1 (launched)
//	          tmpl@.service    template, inactive
type fixture struct {
	reg    core.Registry
	h      http.Handler
	hashes map[string]core.Hash
}

// fixtureUnits are the units of the fixture: name, target state.
var fixtureUnits = []struct {
	name   string
	target core.JobState
}{
	{"global.service", core.Launched},
	{"idle.service", core.Inactive},
	{"loaded.service", core.Loaded},
	{"moved.service", core.Launched},
	{"placed.service", core.Launched},
	{"tmpl@.service", core.Inactive},
}

// fixtureOptions are the options of a fixture unit.
func fixtureOptions(name string) []core.Option {
	opts := []core.Option{{Section: "Service", Name: "ExecStart", Value: "/bin/true " + name}}
	if name == "global.service" {
		opts = append(opts, core.Option{Section: "X-Fleet", Name: "Global", Value: "true"})
	}
	return opts
}

func newFixture(t *testing.T, backend string, tweak func(*Config)) *fixture {
	t.Helper()
	f := &fixture{reg: newRegistry(t, backend), hashes: map[string]core.Hash{}}
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("fixture: %s: %v", what, err)
		}
	}
	for _, m := range []core.MachineState{
		{ID: "m1", PublicIP: "10.0.0.1", Metadata: map[string]string{"region": "us", "disk": "ssd"}},
		{ID: "m2", PublicIP: "10.0.0.2", Metadata: map[string]string{"region": "eu"}},
	} {
		must("Heartbeat", f.reg.Heartbeat(ctx, m, m.ID+"/s", testTTL))
	}
	for _, u := range fixtureUnits {
		sub, err := core.PrepareUnit(u.name, core.NewUnitFile(fixtureOptions(u.name)).Bytes())
		must("PrepareUnit", err)
		sub.Unit.TargetState = u.target
		must("CreateUnit", f.reg.CreateUnit(ctx, sub.Unit, sub.File.Bytes()))
		f.hashes[u.name] = sub.Unit.Hash
	}
	fence, err := f.reg.AcquireLeadership(ctx, "m1", "m1/s", testTTL)
	must("AcquireLeadership", err)
	_, err = f.reg.ApplySchedule(ctx, fence, []core.ScheduleOp{
		f.place("loaded.service", "m2", core.Loaded),
		f.place("moved.service", "m2", core.Launched),
		f.place("placed.service", "m1", core.Launched),
	})
	must("ApplySchedule", err)
	must("PublishUnitStates m1", f.reg.PublishUnitStates(ctx, "m1", "m1/s", []core.UnitState{
		f.state("global.service", "m1", true),
		f.state("moved.service", "m1", true),
		f.state("placed.service", "m1", true),
	}, nil))
	must("PublishUnitStates m2", f.reg.PublishUnitStates(ctx, "m2", "m2/s", []core.UnitState{
		f.state("global.service", "m2", true),
		f.state("loaded.service", "m2", false),
		f.state("moved.service", "m2", true),
	}, nil))
	cfg := Config{Registry: f.reg, Version: testVersion, MaxBodyBytes: 1 << 20}
	if tweak != nil {
		tweak(&cfg)
	}
	f.h = NewHandler(cfg)
	return f
}

func (f *fixture) place(unit, machine string, target core.JobState) core.ScheduleOp {
	return core.ScheduleOp{Kind: core.OpPlace, Placement: core.Placement{Unit: unit, Machine: machine, Hash: f.hashes[unit], TargetState: target}}
}

// state is what machine publishes for unit: active and launched, or loaded.
func (f *fixture) state(unit, machine string, launched bool) core.UnitState {
	s := core.UnitState{Unit: unit, Machine: machine, Hash: f.hashes[unit], LoadState: core.LoadLoaded, ActiveState: core.ActiveInactive, SubState: "dead"}
	if launched {
		s.ActiveState, s.SubState, s.Launched = core.ActiveActive, "running", true
	}
	return s
}

// expand replaces <hash:NAME> in s with the fixture hash of unit NAME.
func (f *fixture) expand(s string) string {
	for name, h := range f.hashes {
		s = strings.ReplaceAll(s, "<hash:"+name+">", string(h))
	}
	return s
}

// answer is a recorded answer.
type answer struct {
	code   int
	header http.Header
	body   string
}

// do sends one request to the handler.
func (f *fixture) do(t *testing.T, method, target string, header http.Header, body string) answer {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	res := rec.Result()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return answer{code: res.StatusCode, header: res.Header, body: string(data)}
}

// snapshot is everything the registry stores that the API can change or show.
type snapshot struct {
	Units      []core.Unit
	Contents   map[core.Hash]string
	Placements []core.Placement
	States     []core.UnitState
	Machines   []core.MachineState
}

func (f *fixture) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := t.Context()
	var s snapshot
	var err error
	if s.Units, err = f.reg.Units(ctx); err != nil {
		t.Fatalf("snapshot: Units: %v", err)
	}
	s.Contents = map[core.Hash]string{}
	for _, u := range s.Units {
		data, err := f.reg.UnitContents(ctx, u.Hash)
		if err != nil {
			t.Fatalf("snapshot: UnitContents(%s): %v", u.Hash, err)
		}
		s.Contents[u.Hash] = string(data)
	}
	if s.Placements, err = f.reg.Placements(ctx); err != nil {
		t.Fatalf("snapshot: Placements: %v", err)
	}
	if s.States, err = f.reg.UnitStates(ctx); err != nil {
		t.Fatalf("snapshot: UnitStates: %v", err)
	}
	if s.Machines, err = f.reg.Machines(ctx); err != nil {
		t.Fatalf("snapshot: Machines: %v", err)
	}
	return s
}

// unit returns the stored unit name and its contents, or ok false.
func (s snapshot) unit(name string) (u core.Unit, contents string, ok bool) {
	for _, u := range s.Units {
		if u.Name == name {
			return u, s.Contents[u.Hash], true
		}
	}
	return core.Unit{}, "", false
}

// machine returns the live machine id.
func (s snapshot) machine(id string) core.MachineState {
	for _, m := range s.Machines {
		if m.ID == id {
			return m
		}
	}
	return core.MachineState{}
}

// sameJSON fails the test unless got and want are the same JSON value.
func sameJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("expected body is not JSON: %v\n%s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body:\n got  %s\n want %s", got, want)
	}
}

// errJSON is the error body of code with msg.
func errJSON(code int, msg string) string {
	b, err := json.Marshal(errorBody{Error: &Error{Code: code, Message: msg}})
	if err != nil {
		panic(err)
	}
	return string(b)
}
