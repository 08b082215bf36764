package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
)

// FuzzHandler drives the API handler over a memory registry holding the
// fixture cluster with arbitrary requests: the handler never panics, never
// answers 5xx (the registry is healthy, so every failure is the client's),
// and a 4xx answer leaves everything stored as it was.
func FuzzHandler(f *testing.F) {
	for _, s := range [][4]string{
		{"GET", "/fleet/v1/units", "", ""},
		{"GET", "/fleet/v1/units?nextPageToken=garbage", "", ""},
		{"GET", "/v1-alpha/state?machineID=m1&unitName=global.service", "", ""},
		{"GET", "/fleet/v1/units/tmpl@.service", "", ""},
		{"GET", "/fleet/v1/discovery", "", ""},
		{"PUT", "/fleet/v1/units/new.service", "application/json", `{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`},
		{"PUT", "/fleet/v1/units/idle.service", "application/json", `{"desiredState":"loaded"}`},
		{"PUT", "/fleet/v1/units/tmpl@8080.service", "application/json; charset=utf-8", `{"desiredState":"launched"}`},
		{"PUT", "/fleet/v1/units/tmpl@.service", "application/json", `{"desiredState":"launched"}`},
		{"PUT", "/fleet/v1/units/x.service", "application/json", `{"name":"y.service","options":[]}`},
		{"PUT", "/fleet/v1/units/x.service", "application/json", `{"options":[{"section":"X-Fleet","name":"MachineID","value":"m1"},{"section":"X-Fleet","name":"Global","value":"true"}]}`},
		{"PUT", "/fleet/v1/units/x.service", "text/plain", `{}`},
		{"PUT", "/fleet/v1/units/x.service", "application/json", `{"options":[{"section":"Service","name":"A","value":"b\\\nc"}]} trailing`},
		{"DELETE", "/fleet/v1/units/placed.service", "", ""},
		{"DELETE", "/fleet/v1/units/absent.service", "", ""},
		{"PATCH", "/fleet/v1/machines", "application/json", `[{"op":"add","path":"/m1/metadata/role","value":"db"},{"op":"remove","path":"/m2/metadata/region"}]`},
		{"PATCH", "/fleet/v1/machines", "application/json", `[{"op":"add","path":"/m1/metadata/role","value":"db"},{"op":"move","path":"/m1/metadata/x"}]`},
		{"PATCH", "/fleet/v1/machines", "application/json", `[{"op":"replace","path":"/nosuch/metadata/k","value":"v"}]`},
		{"POST", "/", "", ""},
		{"GET", "/fleet/v1/units/a%2Fb.service", "", ""},
	} {
		f.Add(s[0], s[1], s[2], []byte(s[3]))
	}
	f.Fuzz(func(t *testing.T, method, target, contentType string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Skip("not a request target")
		}
		req, err := http.NewRequestWithContext(t.Context(), method, "/", bytes.NewReader(body))
		if err != nil {
			t.Skip("not a request method")
		}
		req.URL, req.RequestURI = u, target
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		fx := newFixture(t, "memory", nil)
		before := fx.snapshot(t)
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		res := rec.Result()
		if _, err := io.ReadAll(res.Body); err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		if res.StatusCode >= 500 {
			t.Fatalf("%s %q: %d %s", method, target, res.StatusCode, rec.Body)
		}
		if res.StatusCode >= 400 {
			if after := fx.snapshot(t); !reflect.DeepEqual(before, after) {
				t.Fatalf("%s %q answered %d but changed the registry:\nbefore %+v\nafter  %+v", method, target, res.StatusCode, before, after)
			}
		}
	})
}
