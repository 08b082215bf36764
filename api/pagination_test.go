package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPageTokenWireForm: fleet's tokens, as observed from fleet v1.0.0.
func TestPageTokenWireForm(t *testing.T) {
	for tok, want := range map[PageToken]string{
		{Limit: 100, Page: 2}: "ZAACAA==",
		{Limit: 100, Page: 3}: "ZAADAA==",
	} {
		if got := tok.Encode(); got != want {
			t.Errorf("%+v encodes as %q, want %q", tok, got, want)
		}
		back, err := DecodePageToken(want)
		if err != nil || back != tok {
			t.Errorf("DecodePageToken(%q) = %+v, %v; want %+v", want, back, err, tok)
		}
	}
}

// TestPagination: with a page size of 2, every listing is split into sorted
// pages; the last page has no token, also when it is full; bad tokens are a
// 400.
func TestPagination(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend, func(c *Config) { c.TokenLimit = 2 })
			// The fixture has 6 units (3 full pages), 6 states, 2 machines (1 full page).
			wantPages(t, f, "/fleet/v1/units", "units", [][]string{
				{"global.service", "idle.service"}, {"loaded.service", "moved.service"}, {"placed.service", "tmpl@.service"},
			})
			wantPages(t, f, "/fleet/v1/state?unitName=moved.service", "states", [][]string{{"moved.service@m1", "moved.service@m2"}})
			wantPages(t, f, "/fleet/v1/state?machineID=m1", "states", [][]string{
				{"global.service@m1", "moved.service@m1"}, {"placed.service@m1"},
			})
			wantPages(t, f, "/fleet/v1/machines", "machines", [][]string{{"m1", "m2"}})
			create(t, f, "zzz.service")
			wantPages(t, f, "/fleet/v1/units", "units", [][]string{
				{"global.service", "idle.service"}, {"loaded.service", "moved.service"}, {"placed.service", "tmpl@.service"}, {"zzz.service"},
			})

			past := PageToken{Limit: 2, Page: 9}.Encode()
			if a := f.do(t, "GET", "/fleet/v1/units?nextPageToken="+url.QueryEscape(past), nil, ""); a.code != 200 || a.body != "{}" {
				t.Errorf("a page past the end: %d %s, want 200 {}", a.code, a.body)
			}
			for _, c := range []struct{ query, msg string }{
				{"nextPageToken=ZAACAA==", "token limit must be 2"},
				{"nextPageToken=" + PageToken{Limit: 2}.Encode(), "token page must be greater than zero"},
				{"nextPageToken=AgACAA==&nextPageToken=AgACAA==", "too many values for page token"},
				{"nextPageToken=", `invalid page token "": 0 bytes, want 4`},
				{"nextPageToken=AgACAA", `invalid page token "AgACAA": illegal base64 data at input byte 4`},
				{"nextPageToken=AgACAAAA", `invalid page token "AgACAAAA": 6 bytes, want 4`},
			} {
				for _, p := range []string{"/fleet/v1/units", "/fleet/v1/state", "/v1-alpha/machines"} {
					a := f.do(t, "GET", p+"?"+c.query, nil, "")
					if a.code != http.StatusBadRequest {
						t.Fatalf("GET %s?%s: %d %s, want 400", p, c.query, a.code, a.body)
					}
					sameJSON(t, a.body, errJSON(400, c.msg))
				}
			}
		})
	}
}

// wantPages follows a listing from its first page and checks each page's
// items (units and machines by name, states as unit@machine).
func wantPages(t *testing.T, f *fixture, path, field string, want [][]string) {
	t.Helper()
	var got [][]string
	token := ""
	for range len(want) + 2 {
		target := path
		if token != "" {
			target += sep(path) + "nextPageToken=" + url.QueryEscape(token)
		}
		a := f.do(t, "GET", target, nil, "")
		if a.code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", target, a.code, a.body)
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal([]byte(a.body), &page); err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		var items []struct{ Name, ID, MachineID string }
		if raw, ok := page[field]; ok {
			if err := json.Unmarshal(raw, &items); err != nil {
				t.Fatalf("GET %s: %v", target, err)
			}
		}
		var names []string
		for _, it := range items {
			switch {
			case field == "states":
				names = append(names, it.Name+"@"+it.MachineID)
			case it.Name != "":
				names = append(names, it.Name)
			default:
				names = append(names, it.ID)
			}
		}
		got = append(got, names)
		token = ""
		if raw, ok := page["nextPageToken"]; ok {
			if err := json.Unmarshal(raw, &token); err != nil {
				t.Fatalf("GET %s: %v", target, err)
			}
		}
		if token == "" {
			break
		}
		if want := (PageToken{Limit: 2, Page: uint16(len(got) + 1)}).Encode(); token != want {
			t.Fatalf("GET %s: next token %q, want %q", target, token, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages of %s: %v, want %v", path, got, want)
	}
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// create stores a new inactive unit through the API.
func create(t *testing.T, f *fixture, name string) {
	t.Helper()
	a := f.do(t, "PUT", "/fleet/v1/units/"+name, http.Header{"Content-Type": {"application/json"}}, optionsBody("/bin/true"))
	if a.code != http.StatusCreated {
		t.Fatalf("PUT %s: %d %s", name, a.code, a.body)
	}
	if _, err := f.reg.Unit(t.Context(), name); err != nil {
		t.Fatalf("unit %s not stored: %v", name, err)
	}
}
