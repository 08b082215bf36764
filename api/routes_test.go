package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// allUnitsJSON is GET /units on the fixture: sorted by name, currentState
// and machineID derived, none for the global unit.
var allUnitsJSON = `{"units":[` + strings.Join([]string{
	unitJSON("global.service", "launched", "", ""),
	unitJSON("idle.service", "inactive", "inactive", ""),
	unitJSON("loaded.service", "loaded", "loaded", "m2"),
	unitJSON("moved.service", "launched", "launched", "m2"),
	unitJSON("placed.service", "launched", "launched", "m1"),
	unitJSON("tmpl@.service", "inactive", "inactive", ""),
}, ",") + `]}`

// allStatesJSON is GET /state on the fixture, sorted by unit then machine.
var allStatesJSON = `{"states":[` + strings.Join([]string{
	stateJSON("global.service", "m1", true),
	stateJSON("global.service", "m2", true),
	stateJSON("loaded.service", "m2", false),
	stateJSON("moved.service", "m1", true),
	stateJSON("moved.service", "m2", true),
	stateJSON("placed.service", "m1", true),
}, ",") + `]}`

const allMachinesJSON = `{"machines":[
	{"id":"m1","primaryIP":"10.0.0.1","metadata":{"disk":"ssd","region":"us"}},
	{"id":"m2","primaryIP":"10.0.0.2","metadata":{"region":"eu"}}]}`

// TestRoutes: fleet's routing (404 and 405 rules, both prefixes, alt=json)
// and every read, over each backend. No request changes anything stored.
func TestRoutes(t *testing.T) {
	notFound := errJSON(404, "not found")
	runCases(t, []apiCase{
		{name: "root is 405", method: "GET", path: "/", code: 405, want: errJSON(405, "method not allowed")},
		{name: "bare prefix is 405", method: "GET", path: "/fleet/v1", code: 405, want: errJSON(405, "method not allowed")},
		{name: "bare legacy prefix is 405", method: "POST", path: "/v1-alpha", code: 405, want: errJSON(405, "method not allowed")},
		{name: "prefix with slash is 404", method: "GET", path: "/fleet/v1/", code: 404, want: notFound},
		{name: "unknown path is 404", method: "GET", path: "/nope", code: 404, want: notFound},
		{name: "unknown resource is 404", method: "GET", path: "/fleet/v1/jobs", code: 404, want: notFound},
		{name: "metrics unset is 404", method: "GET", path: "/metrics", code: 404, want: notFound},
		{name: "trailing slash on an item is 404", method: "GET", path: "/fleet/v1/units/placed.service/", code: 404, want: notFound},
		{name: "trailing slash on units is 404", method: "GET", path: "/fleet/v1/units/", code: 404, want: notFound},
		{name: "nested item is 404", method: "GET", path: "/fleet/v1/units/a/b.service", code: 404, want: notFound},
		{name: "machine item is 404", method: "GET", path: "/fleet/v1/machines/m1", code: 404, want: notFound},
		{name: "discovery item is 404", method: "GET", path: "/fleet/v1/discovery/x", code: 404, want: notFound},
		{name: "POST units is 405", method: "POST", path: "/fleet/v1/units", code: 405, allow: "GET",
			want: errJSON(405, "only GET supported against this resource")},
		{name: "PATCH unit is 405", method: "PATCH", path: "/fleet/v1/units/placed.service", code: 405, allow: "GET, PUT, DELETE",
			want: errJSON(405, "only GET, PUT, DELETE supported against this resource")},
		{name: "HEAD unit is 405", method: "HEAD", path: "/fleet/v1/units/placed.service", code: 405, allow: "GET, PUT, DELETE",
			want: errJSON(405, "only GET, PUT, DELETE supported against this resource")},
		{name: "PUT state is 405", method: "PUT", path: "/fleet/v1/state", code: 405, allow: "GET",
			want: errJSON(405, "only GET supported against this resource")},
		{name: "DELETE unit state is 405", method: "DELETE", path: "/v1-alpha/state/placed.service", code: 405, allow: "GET",
			want: errJSON(405, "only GET supported against this resource")},
		{name: "DELETE machines is 405", method: "DELETE", path: "/fleet/v1/machines", code: 405, allow: "GET, PATCH",
			want: errJSON(405, "only GET, PATCH supported against this resource")},
		{name: "POST discovery is 400", method: "POST", path: "/fleet/v1/discovery", code: 400,
			want: errJSON(400, "only HTTP GET supported against this resource")},

		{name: "list units", method: "GET", path: "/fleet/v1/units", code: 200, want: allUnitsJSON},
		{name: "list units legacy prefix alt=json", method: "GET", path: "/v1-alpha/units?alt=json", code: 200, want: allUnitsJSON},
		{name: "get placed unit", method: "GET", path: "/fleet/v1/units/placed.service?alt=json", code: 200,
			want: unitJSON("placed.service", "launched", "launched", "m1")},
		{name: "get loaded unit", method: "GET", path: "/fleet/v1/units/loaded.service", code: 200,
			want: unitJSON("loaded.service", "loaded", "loaded", "m2")},
		{name: "get unplaced unit", method: "GET", path: "/fleet/v1/units/idle.service", code: 200,
			want: unitJSON("idle.service", "inactive", "inactive", "")},
		{name: "get global unit", method: "GET", path: "/fleet/v1/units/global.service", code: 200,
			want: unitJSON("global.service", "launched", "", "")},
		{name: "get template", method: "GET", path: "/fleet/v1/units/tmpl@.service", code: 200,
			want: unitJSON("tmpl@.service", "inactive", "inactive", "")},
		{name: "get missing unit", method: "GET", path: "/fleet/v1/units/missing.service", code: 404,
			want: errJSON(404, "unit does not exist")},
		{name: "get invalid name", method: "GET", path: "/fleet/v1/units/nosuffix", code: 404,
			want: errJSON(404, "unit does not exist")},

		{name: "list states", method: "GET", path: "/fleet/v1/state", code: 200, want: allStatesJSON},
		{name: "states of a machine", method: "GET", path: "/fleet/v1/state?machineID=m2", code: 200, want: `{"states":[` +
			stateJSON("global.service", "m2", true) + "," + stateJSON("loaded.service", "m2", false) + "," +
			stateJSON("moved.service", "m2", true) + `]}`},
		{name: "states of a unit", method: "GET", path: "/fleet/v1/state?unitName=global.service", code: 200, want: `{"states":[` +
			stateJSON("global.service", "m1", true) + "," + stateJSON("global.service", "m2", true) + `]}`},
		{name: "states filtered by both", method: "GET", path: "/fleet/v1/state?unitName=moved.service&machineID=m1", code: 200,
			want: `{"states":[` + stateJSON("moved.service", "m1", true) + `]}`},
		{name: "state filters use the first value", method: "GET", path: "/fleet/v1/state?machineID=m1&machineID=m2&unitName=placed.service", code: 200,
			want: `{"states":[` + stateJSON("placed.service", "m1", true) + `]}`},
		{name: "state filter matches exactly", method: "GET", path: "/fleet/v1/state?machineID=m", code: 200, want: `{}`},
		{name: "state of a placed unit", method: "GET", path: "/fleet/v1/state/placed.service", code: 200,
			want: stateJSON("placed.service", "m1", true)},
		{name: "state of a moved unit is the placed machine's", method: "GET", path: "/fleet/v1/state/moved.service", code: 200,
			want: stateJSON("moved.service", "m2", true)},
		{name: "state of a global unit is the lowest machine's", method: "GET", path: "/fleet/v1/state/global.service", code: 200,
			want: stateJSON("global.service", "m1", true)},
		{name: "state of an unplaced unit", method: "GET", path: "/fleet/v1/state/idle.service", code: 404,
			want: errJSON(404, "unit state does not exist")},
		{name: "state of an invalid name", method: "GET", path: "/fleet/v1/state/x", code: 404,
			want: errJSON(404, "unit state does not exist")},

		{name: "list machines", method: "GET", path: "/fleet/v1/machines", code: 200, want: allMachinesJSON},
		{name: "list machines legacy prefix", method: "GET", path: "/v1-alpha/machines?alt=json", code: 200, want: allMachinesJSON},
	})
}

// TestDiscovery: the discovery document is served at both prefixes, is JSON
// with fleet's literal rootUrl, and describes every resource method the
// handler serves.
func TestDiscovery(t *testing.T) {
	f := newFixture(t, "memory", nil)
	for _, prefix := range prefixes {
		a := f.do(t, "GET", prefix+"/discovery", nil, "")
		if a.code != http.StatusOK || a.header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s/discovery: %d %q", prefix, a.code, a.header.Get("Content-Type"))
		}
		var doc struct {
			RootURL   string `json:"rootUrl"`
			Resources map[string]struct {
				Methods map[string]struct {
					HTTPMethod string `json:"httpMethod"`
					Path       string `json:"path"`
				} `json:"methods"`
			} `json:"resources"`
		}
		if err := json.Unmarshal([]byte(a.body), &doc); err != nil {
			t.Fatalf("discovery document: %v", err)
		}
		if doc.RootURL != "$ENDPOINT/" {
			t.Errorf("rootUrl %q, want $ENDPOINT/", doc.RootURL)
		}
		described := map[string]bool{}
		for _, r := range doc.Resources {
			for _, m := range r.Methods {
				described[m.HTTPMethod+" "+m.Path] = true
			}
		}
		for _, want := range []string{
			"GET machines", "PATCH machines", "GET units", "GET units/{unitName}", "PUT units/{unitName}",
			"DELETE units/{unitName}", "GET state", "GET state/{unitName}",
		} {
			if !described[want] {
				t.Errorf("discovery does not describe %s (it has %v)", want, described)
			}
		}
	}
}
