package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

// optionsBody is a PUT body with one [Service] ExecStart option of value
// exec, plus extra JSON fields (`"desiredState":"launched"`).
func optionsBody(exec string, extra ...string) string {
	fields := append([]string{fmt.Sprintf(`"options":[{"section":"Service","name":"ExecStart","value":%q}]`, exec)}, extra...)
	return "{" + strings.Join(fields, ",") + "}"
}

// execContents is the canonical unit file of optionsBody(exec).
func execContents(exec string) string { return "[Service]\nExecStart=" + exec + "\n" }

// fixtureContents is the canonical unit file of a fixture unit.
func fixtureContents(name string) string {
	return string(core.NewUnitFile(fixtureOptions(name)).Bytes())
}

// TestPutUnit: PUT /units/<name> in fleet's decision order, with the fixes
// (desiredState validated, replace validated and answered 204). Every
// rejected request leaves the registry as it was.
func TestPutUnit(t *testing.T) {
	const path = "/fleet/v1/units/"
	runCases(t, []apiCase{
		{name: "no Content-Type", method: "PUT", path: path + "new.service", ctype: []string{}, body: optionsBody("/bin/true"),
			code: 415, want: errJSON(415, "expected 1 Content-Type, got 0")},
		{name: "two Content-Types", method: "PUT", path: path + "new.service", ctype: []string{"application/json", "application/json"},
			body: optionsBody("/bin/true"), code: 415, want: errJSON(415, "expected 1 Content-Type, got 2")},
		{name: "wrong Content-Type", method: "PUT", path: path + "new.service", ctype: []string{"text/plain"}, body: optionsBody("/bin/true"),
			code: 415, want: errJSON(415, "only acceptable Content-Type is application/json")},
		{name: "Content-Type with parameters", method: "PUT", path: path + "new.service", ctype: []string{"application/json; charset=utf-8"},
			body: optionsBody("/bin/true"), code: 201, after: wantStored("new.service", core.Inactive, execContents("/bin/true"))},
		{name: "malformed body", method: "PUT", path: path + "new.service", body: `{"options":`, code: 400,
			want: errJSON(400, "unable to decode body: unexpected EOF")},
		{name: "empty body", method: "PUT", path: path + "new.service", ctype: []string{"application/json"}, code: 400,
			want: errJSON(400, "unable to decode body: EOF")},
		{name: "data after the body", method: "PUT", path: path + "new.service", body: optionsBody("/bin/true") + "{}", code: 400,
			want: errJSON(400, "unable to decode body: unexpected data after the JSON value")},
		{name: "wrong field type", method: "PUT", path: path + "new.service", body: `{"options":"x"}`, code: 400,
			want: errJSON(400, "unable to decode body: json: cannot unmarshal string into Go struct field Unit.options of type []api.UnitOption")},
		{name: "body larger than the limit", method: "PUT", path: path + "new.service", body: optionsBody(strings.Repeat("x", 1<<20)),
			code: 413, want: errJSON(413, "request body is larger than the limit of 1048576 bytes")},
		{name: "name differs from the URL", method: "PUT", path: path + "new.service", body: `{"name":"other.service","desiredState":"launched"}`,
			code: 400, want: errJSON(400, `name in URL "new.service" differs from unit name in request body "other.service"`)},
		{name: "invalid name", method: "PUT", path: path + "nosuffix", body: optionsBody("/bin/true"),
			code: 400, want: errJSON(400, `invalid unit name "nosuffix": name has no unit type suffix (such as .service)`)},
		{name: "name longer than the limit", method: "PUT", path: path + strings.Repeat("a", 300) + ".service", body: optionsBody("/bin/true"),
			code: 400, want: errJSON(400, fmt.Sprintf("invalid unit name %q: name is longer than 255 bytes", strings.Repeat("a", 300)+".service"))},

		{name: "create without options", method: "PUT", path: path + "new.service", body: `{"desiredState":"launched"}`,
			code: 409, want: errJSON(409, "unit does not exist and options field empty")},
		{name: "create with empty options", method: "PUT", path: path + "new.service", body: `{"options":[]}`,
			code: 409, want: errJSON(409, "unit does not exist and options field empty")},
		{name: "create", method: "PUT", path: path + "new.service", body: optionsBody("/bin/true"),
			code: 201, after: wantStored("new.service", core.Inactive, execContents("/bin/true"))},
		{name: "create with a name in the body and unknown fields", method: "PUT", path: path + "new.service",
			body: optionsBody("/bin/true", `"name":"new.service"`, `"currentState":"launched"`, `"machineID":"m1"`, `"extra":1`),
			code: 201, after: wantStored("new.service", core.Inactive, execContents("/bin/true"))},
		{name: "create launched", method: "PUT", path: path + "new.service", body: optionsBody("/bin/true", `"desiredState":"launched"`),
			code: 201, after: wantStored("new.service", core.Launched, execContents("/bin/true"))},
		{name: "create on the legacy prefix", method: "PUT", path: "/v1-alpha/units/new.service?alt=json", body: optionsBody("/bin/true"),
			code: 201, after: wantStored("new.service", core.Inactive, execContents("/bin/true"))},
		{name: "create normalizes whitespace and section order", method: "PUT", path: path + "new.service",
			body: `{"options":[{"section":"Service","name":" ExecStart ","value":"  /bin/true  "},{"section":"Unit","name":"Description","value":"d"},{"section":"Service","name":"Restart","value":"always"}]}`,
			code: 201, after: wantStored("new.service", core.Inactive, "[Service]\nExecStart=/bin/true\nRestart=always\n\n[Unit]\nDescription=d\n")},
		{name: "create keeps continuation lines", method: "PUT", path: path + "new.service", body: optionsBody("/bin/sh -c \\\n  true"),
			code: 201, after: wantStored("new.service", core.Inactive, execContents("/bin/sh -c \\\n  true"))},
		{name: "create a template", method: "PUT", path: path + "new@.service", body: optionsBody("/bin/true %i"),
			code: 201, after: wantStored("new@.service", core.Inactive, execContents("/bin/true %i"))},
		{name: "create a launched template", method: "PUT", path: path + "new@.service", body: optionsBody("/bin/true %i", `"desiredState":"launched"`),
			code: 400, want: errJSON(400, `cannot activate template "new@.service"`)},
		{name: "create with an unknown desiredState", method: "PUT", path: path + "new.service", body: optionsBody("/bin/true", `"desiredState":"started"`),
			code: 400, want: errJSON(400, `invalid desiredState "started": want inactive, loaded or launched`)},
		{name: "create with conflicting X-Fleet options", method: "PUT", path: path + "new.service",
			body: `{"options":[{"section":"X-Fleet","name":"MachineID","value":"m1"},{"section":"X-Fleet","name":"Global","value":"true"}]}`,
			code: 400, want: errJSON(400, "invalid options: new.service: [X-Fleet]: MachineID cannot be used with Global")},
		{name: "create with a malformed X-Fleet value", method: "PUT", path: path + "new.service",
			body: `{"options":[{"section":"X-Fleet","name":"MachineMetadata","value":"nokey"}]}`,
			code: 400, want: errJSON(400, `invalid options: new.service: [X-Fleet] MachineMetadata: value "nokey" is not key=value`)},
		{name: "option with an empty section", method: "PUT", path: path + "new.service", body: `{"options":[{"name":"A","value":"b"}]}`,
			code: 400, want: errJSON(400, `options[0] (section "", name "A"): section is empty`)},
		{name: "option with an empty name", method: "PUT", path: path + "new.service", body: `{"options":[{"section":"Service","value":"b"}]}`,
			code: 400, want: errJSON(400, `options[0] (section "Service", name ""): name is empty`)},
		{name: "option value smuggling a line", method: "PUT", path: path + "new.service", body: optionsBody("/bin/true\nExecStartPre=/bin/evil"),
			code: 400, want: errJSON(400, `options[0] (section "Service", name "ExecStart"): value has a line break that does not directly follow a backslash (a continuation)`)},
		{name: "option name with a comment character", method: "PUT", path: path + "new.service", body: `{"options":[{"section":"Service","name":"#A","value":"b"}]}`,
			code: 400, want: errJSON(400, `options[0] (section "Service", name "#A"): name must not start with a comment character ('#' or ';')`)},
		{name: "option section with a bracket", method: "PUT", path: path + "new.service", body: `{"options":[{"section":"S]x","name":"A","value":"b"}]}`,
			code: 400, want: errJSON(400, `options[0] (section "S]x", name "A"): section must not contain '[', ']', line breaks or NUL`)},
		{name: "option line longer than the limit", method: "PUT", path: path + "new.service", body: optionsBody(strings.Repeat("x", 2040)),
			code: 400, want: errJSON(400, `options[0] (section "Service", name "ExecStart"): line 1 of the option is 2050 bytes; lines must be shorter than 2048`)},
		{name: "more options than the limit", method: "PUT", path: path + "new.service", body: manyOptionsBody(MaxUnitOptions + 1),
			code: 400, want: errJSON(400, fmt.Sprintf("unit has %d options, more than the limit of %d", MaxUnitOptions+1, MaxUnitOptions))},
		{name: "unit file larger than the limit", method: "PUT", path: path + "new.service", body: bigUnitBody(140),
			code: 400, want: errJSON(400, "invalid options: new.service: file is 282420 bytes, larger than the limit of 262144")},
		{name: "replace by a unit file larger than the limit", method: "PUT", path: path + "placed.service", body: bigUnitBody(140),
			code: 400, want: errJSON(400, "invalid options: placed.service: file is 282420 bytes, larger than the limit of 262144")},
		{name: "DELETE of a name longer than the limit", method: "DELETE", path: path + strings.Repeat("a", 300) + ".service",
			code: 404, want: errJSON(404, "unit does not exist")},
		{name: "GET of a name longer than the limit", method: "GET", path: path + strings.Repeat("a", 300) + ".service",
			code: 404, want: errJSON(404, "unit does not exist")},
		{name: "value ending in a backslash", method: "PUT", path: path + "new.service", body: optionsBody(`/bin/true \`),
			code: 400, want: errJSON(400, `options[0] (section "Service", name "ExecStart"): value must not end in a backslash, which would continue it into the next line`)},

		{name: "replace", method: "PUT", path: path + "placed.service", body: optionsBody("/bin/false"),
			code: 204, after: wantStored("placed.service", core.Inactive, execContents("/bin/false"))},
		{name: "replace with a desired state", method: "PUT", path: path + "placed.service", body: optionsBody("/bin/false", `"desiredState":"loaded"`),
			code: 204, after: wantStored("placed.service", core.Loaded, execContents("/bin/false"))},
		{name: "replace a global unit by a local one", method: "PUT", path: path + "global.service", body: optionsBody("/bin/false", `"desiredState":"launched"`),
			code: 204, after: wantStored("global.service", core.Launched, execContents("/bin/false"))},
		{name: "replace with invalid options", method: "PUT", path: path + "placed.service",
			body: `{"options":[{"section":"X-Fleet","name":"MachineID","value":"m1"},{"section":"X-Fleet","name":"Conflicts","value":"x*"}]}`,
			code: 400, want: errJSON(400, "invalid options: placed.service: [X-Fleet]: MachineID cannot be used with Conflicts")},
		{name: "replace with an unknown desiredState", method: "PUT", path: path + "placed.service", body: optionsBody("/bin/false", `"desiredState":"on"`),
			code: 400, want: errJSON(400, `invalid desiredState "on": want inactive, loaded or launched`)},
		{name: "same options without desiredState", method: "PUT", path: path + "placed.service", body: optionsBody("/bin/true placed.service"),
			code: 409, want: errJSON(409, "must provide DesiredState to update existing unit")},
		{name: "same options with desiredState", method: "PUT", path: path + "placed.service", body: optionsBody("/bin/true placed.service", `"desiredState":"loaded"`),
			code: 204, after: wantStored("placed.service", core.Loaded, fixtureContents("placed.service"))},
		{name: "no options, no desiredState", method: "PUT", path: path + "placed.service", body: `{}`,
			code: 409, want: errJSON(409, "must provide DesiredState to update existing unit")},
		{name: "set desired state", method: "PUT", path: path + "idle.service", body: `{"desiredState":"launched"}`,
			code: 204, after: wantStored("idle.service", core.Launched, fixtureContents("idle.service"))},
		{name: "set desired state of a placed unit", method: "PUT", path: path + "placed.service", body: `{"name":"placed.service","desiredState":"inactive"}`,
			code: 204, after: wantStored("placed.service", core.Inactive, fixtureContents("placed.service"))},
		{name: "set an unknown desired state", method: "PUT", path: path + "idle.service", body: `{"desiredState":"started"}`,
			code: 400, want: errJSON(400, `invalid desiredState "started": want inactive, loaded or launched`)},
		{name: "activate a template", method: "PUT", path: path + "tmpl@.service", body: `{"desiredState":"loaded"}`,
			code: 400, want: errJSON(400, `cannot activate template "tmpl@.service"`)},
		{name: "set a template inactive", method: "PUT", path: path + "tmpl@.service", body: `{"desiredState":"inactive"}`,
			code: 204, after: wantStored("tmpl@.service", core.Inactive, fixtureContents("tmpl@.service"))},

		{name: "destroy", method: "DELETE", path: path + "placed.service", code: 204, after: wantGone("placed.service")},
		{name: "destroy on the legacy prefix", method: "DELETE", path: "/v1-alpha/units/idle.service", code: 204, after: wantGone("idle.service")},
		{name: "destroy a missing unit", method: "DELETE", path: path + "missing.service", code: 404, want: errJSON(404, "unit does not exist")},
		{name: "destroy an invalid name", method: "DELETE", path: path + "missing", code: 404, want: errJSON(404, "unit does not exist")},
	})
}

// manyOptionsBody is a PUT body with n options.
func manyOptionsBody(n int) string {
	opts := make([]string, n)
	for i := range opts {
		opts[i] = fmt.Sprintf(`{"section":"Service","name":"Environment","value":"N=%d"}`, i)
	}
	return `{"options":[` + strings.Join(opts, ",") + `]}`
}

// bigUnitBody is a PUT body of n options of about 2 KB each.
func bigUnitBody(n int) string {
	opts := make([]string, n)
	for i := range opts {
		opts[i] = fmt.Sprintf(`{"section":"Service","name":"Environment","value":"N%d=%s"}`, i, strings.Repeat("x", 2000))
	}
	return `{"options":[` + strings.Join(opts, ",") + `]}`
}
