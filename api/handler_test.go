package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

var jsonCT = http.Header{"Content-Type": {"application/json"}}

// TestUnavailable: while Available fails, every API request, known path or
// not, is a 503 with fleet's message, observed under its route and not
// logged as an error; /metrics and /health are still served.
func TestUnavailable(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	var logs bytes.Buffer
	var routes []string
	f := newFixture(t, "memory", func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.Observe = func(route, _ string, _ int, _ time.Duration) { routes = append(routes, route) }
		c.Available = func() error {
			if down.Load() {
				return errors.New("not registered yet")
			}
			return nil
		}
		c.Metrics, c.Health = ok, ok
	})
	before := f.snapshot(t)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/fleet/v1/units", ""}, {"GET", "/v1-alpha/machines", ""}, {"GET", "/nope", ""}, {"GET", "/", ""},
		{"PUT", "/fleet/v1/units/new.service", optionsBody("/bin/true")}, {"DELETE", "/fleet/v1/units/placed.service", ""},
	} {
		a := f.do(t, r.method, r.path, jsonCT, r.body)
		if a.code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s while unavailable: %d %s", r.method, r.path, a.code, a.body)
		}
		sameJSON(t, a.body, `{"error":{"code":503,"message":"fleet server unable to communicate with etcd"}}`)
	}
	for _, p := range []string{"/metrics", "/health"} {
		if a := f.do(t, "GET", p, nil, ""); a.code != http.StatusOK || a.body != "ok" {
			t.Fatalf("GET %s while unavailable: %d %s", p, a.code, a.body)
		}
	}
	if want := []string{"units", "machines", "other", "other", "unit", "unit", "metrics", "health"}; !slices.Equal(routes, want) {
		t.Errorf("observed routes %q, want %q", routes, want)
	}
	if logs.Len() > 0 {
		t.Errorf("unavailability was logged: %s", logs.String())
	}
	if after := f.snapshot(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the registry changed while unavailable")
	}
	down.Store(false)
	if a := f.do(t, "GET", "/fleet/v1/units/idle.service", nil, ""); a.code != http.StatusOK {
		t.Fatalf("GET once available: %d %s", a.code, a.body)
	}
}

// TestRegistryErrors: an unreachable registry is a 503 with fleet's message,
// any other failure a 500 with a generic message; the cause is logged once,
// at Error level, and never sent.
func TestRegistryErrors(t *testing.T) {
	for _, c := range []struct {
		cause    error
		code     int
		msg      string
		logLevel string
	}{
		{fmt.Errorf("dialing: %w", core.ErrUnavailable), 503, "fleet server unable to communicate with etcd", "ERROR"},
		{errors.New("disk on fire"), 500, "internal server error", "ERROR"},
	} {
		t.Run(fmt.Sprint(c.code), func(t *testing.T) {
			var logs bytes.Buffer
			reg := memory.New(memory.NewManualClock(time.Unix(0, 0)))
			reg.SetFaults(memory.Faults{Fail: func(string, string) error { return c.cause }})
			h := NewHandler(Config{Registry: reg, Version: testVersion, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			f := &fixture{reg: reg, h: h}
			for _, r := range []struct{ method, path, body string }{
				{"GET", "/fleet/v1/units", ""}, {"GET", "/fleet/v1/units/a.service", ""}, {"DELETE", "/fleet/v1/units/a.service", ""},
				{"PUT", "/fleet/v1/units/a.service", optionsBody("/bin/true")}, {"PUT", "/fleet/v1/units/a.service", `{"desiredState":"loaded"}`},
				{"GET", "/fleet/v1/state", ""}, {"GET", "/fleet/v1/state/a.service", ""},
				{"GET", "/fleet/v1/machines", ""}, {"PATCH", "/fleet/v1/machines", `[{"op":"remove","path":"/m/metadata/k"}]`},
			} {
				logs.Reset()
				a := f.do(t, r.method, r.path, jsonCT, r.body)
				if a.code != c.code {
					t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, a.code, a.body, c.code)
				}
				sameJSON(t, a.body, errJSON(c.code, c.msg))
				lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
				if len(lines) != 1 || !strings.Contains(lines[0], "level="+c.logLevel) || !strings.Contains(lines[0], c.cause.Error()) {
					t.Fatalf("%s %s logged %q, want one %s record with the cause", r.method, r.path, logs.String(), c.logLevel)
				}
			}
		})
	}
}

// TestObserve: the hook sees each request once, with a bounded route label.
func TestObserve(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	f := newFixture(t, "memory", func(c *Config) {
		c.Observe = func(route, method string, code int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if d < 0 {
				t.Errorf("negative duration %v", d)
			}
			seen = append(seen, fmt.Sprintf("%s %s %d", route, method, code))
		}
	})
	f.do(t, "GET", "/fleet/v1/units/placed.service", nil, "")
	f.do(t, "GET", "/v1-alpha/units/missing.service", nil, "")
	f.do(t, "PUT", "/fleet/v1/units/new.service", jsonCT, optionsBody("/bin/true"))
	f.do(t, "GET", "/fleet/v1/units?alt=json", nil, "")
	f.do(t, "GET", "/fleet/v1/state/placed.service", nil, "")
	f.do(t, "BREW", "/fleet/v1/state", nil, "")
	f.do(t, "PATCH", "/fleet/v1/machines", nil, "[]")
	f.do(t, "GET", "/fleet/v1/discovery", nil, "")
	f.do(t, "GET", "/elsewhere", nil, "")
	want := []string{
		"unit GET 200", "unit GET 404", "unit PUT 201", "units GET 200", "state GET 200",
		"states OTHER 405", "machines PATCH 204", "discovery GET 200", "other GET 404",
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("observed %q, want %q", seen, want)
	}
	for _, s := range seen {
		if route, _, _ := strings.Cut(s, " "); !slices.Contains(Routes, route) {
			t.Errorf("route %q is not in Routes", route)
		}
	}
}

// TestRegistryCalls: what each request costs in registry calls. A new unit
// costs one write, a state change one, a destroy one; a rejected request
// none; listings read contents once per hash.
func TestRegistryCalls(t *testing.T) {
	f := newFixture(t, "memory", nil)
	var mu sync.Mutex
	var calls []string
	f.reg.(*memory.Registry).SetFaults(memory.Faults{Fail: func(op, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, op)
		return nil
	}})
	for _, c := range []struct {
		method, path, body string
		want               []string
	}{
		{"PUT", "/fleet/v1/units/new.service", optionsBody("/bin/true", `"desiredState":"launched"`), []string{"CreateUnit"}},
		{"PUT", "/fleet/v1/units/idle.service", `{"desiredState":"launched"}`, []string{"SetTargetState"}},
		{"PUT", "/fleet/v1/units/idle.service", optionsBody("/bin/false"), []string{"CreateUnit", "Unit", "ReplaceUnit"}},
		{"PUT", "/fleet/v1/units/idle.service", `{"desiredState":"bogus"}`, nil},
		{"PUT", "/fleet/v1/units/tmpl@.service", `{"desiredState":"launched"}`, nil},
		{"DELETE", "/fleet/v1/units/new.service", "", []string{"DestroyUnit"}},
		{"GET", "/fleet/v1/units/global.service", "", []string{"Unit", "UnitContents"}},
		{"GET", "/fleet/v1/units/global.service", "", []string{"Unit"}},
		{"GET", "/fleet/v1/units/placed.service", "", []string{"Unit", "UnitContents", "Placements", "UnitStates"}},
		{"GET", "/fleet/v1/units", "", []string{"Units", "Placements", "UnitStates", "UnitContents", "UnitContents", "UnitContents", "UnitContents"}},
		{"GET", "/fleet/v1/units", "", []string{"Units", "Placements", "UnitStates"}},
		{"GET", "/fleet/v1/state/placed.service", "", []string{"UnitStates"}},
		{"GET", "/fleet/v1/state/moved.service", "", []string{"UnitStates", "Placements"}},
		{"PATCH", "/fleet/v1/machines", `[{"op":"add","path":"/m1/metadata/a","value":"b"}]`, []string{"PatchMetadata"}},
		{"PATCH", "/fleet/v1/machines", `[{"op":"add","path":"/m1/metadata/a","value":"b"},{"op":"add","path":"bad"}]`, nil},
	} {
		calls = nil
		f.do(t, c.method, c.path, jsonCT, c.body)
		if !slices.Equal(calls, c.want) {
			t.Errorf("%s %s %s: registry calls %q, want %q", c.method, c.path, c.body, calls, c.want)
		}
	}
}

// TestEtcdRequests: over etcd, creating a unit through the API is one etcd
// request (counted at the gRPC client); starting it is one registry call,
// SetTargetState, which the etcd backend makes in two requests (it reads the
// unit's placements, then writes them with the unit in one compare-and-swap).
func TestEtcdRequests(t *testing.T) {
	var requests atomic.Int64
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		requests.Add(1)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli, err := etcd.Dial(t.Context(), etcd.ClientConfig{
		Endpoints:   shared.srv.Endpoints(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(count)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	reg, err := etcd.New(cli, etcd.WithPrefix(freshPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{reg: reg, h: NewHandler(Config{Registry: reg, Version: testVersion})}
	for _, c := range []struct {
		body string
		want int64
	}{
		{optionsBody("/bin/true"), 1},
		{`{"desiredState":"launched"}`, 2},
	} {
		requests.Store(0)
		if a := f.do(t, "PUT", "/fleet/v1/units/hello.service", jsonCT, c.body); a.code/100 != 2 {
			t.Fatalf("PUT %s: %d %s", c.body, a.code, a.body)
		}
		if n := requests.Load(); n != c.want {
			t.Errorf("PUT %s: %d etcd requests, want %d", c.body, n, c.want)
		}
	}
}

// TestConfigValidate: each bad field is named; zero values take defaults.
func TestConfigValidate(t *testing.T) {
	reg := memory.New(memory.NewManualClock(time.Unix(0, 0)))
	good := Config{Registry: reg, Version: "1.0.0"}
	if err := good.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for _, c := range []struct {
		tweak func(*Config)
		field string
	}{
		{func(c *Config) { c.Registry = nil }, "Registry"},
		{func(c *Config) { c.Version = "" }, "Version"},
		{func(c *Config) { c.Version = "1.0 beta" }, "Version"},
		{func(c *Config) { c.TokenLimit = -1 }, "TokenLimit"},
		{func(c *Config) { c.TokenLimit = MaxTokenLimit + 1 }, "TokenLimit"},
		{func(c *Config) { c.MaxBodyBytes = -1 }, "MaxBodyBytes"},
		{func(c *Config) { c.MaxBodyBytes = MinMaxBodyBytes - 1 }, "MaxBodyBytes"},
	} {
		cfg := good
		c.tweak(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "Config."+c.field) {
			t.Errorf("config %+v: error %v, want one naming %s", cfg, err, c.field)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHandler accepted an invalid %s", c.field)
				}
			}()
			NewHandler(cfg)
		}()
	}
	d := good.withDefaults()
	if d.TokenLimit != DefaultTokenLimit || d.MaxBodyBytes != DefaultMaxBodyBytes || d.Logger == nil {
		t.Errorf("defaults: %+v", d)
	}
}
