package api

import (
	"fmt"
	"strings"
	"testing"
)

// TestPatchMachines: PATCH /machines accepts fleet's nested value and its
// documentation's plain string, checks every op before writing any, and
// applies all of them or none.
func TestPatchMachines(t *testing.T) {
	const path = "/fleet/v1/machines"
	runCases(t, []apiCase{
		{name: "add nested value", method: "PATCH", path: path, body: `[{"op":"add","path":"/m2/metadata/disk","value":{"value":"hdd"}}]`,
			code: 204, after: wantMetadata("m2", map[string]string{"region": "eu", "disk": "hdd"})},
		{name: "add plain value", method: "PATCH", path: path, body: `[{"op":"add","path":"/m2/metadata/disk","value":"hdd"}]`,
			code: 204, after: wantMetadata("m2", map[string]string{"region": "eu", "disk": "hdd"})},
		{name: "replace an announced key", method: "PATCH", path: path, body: `[{"op":"replace","path":"/m1/metadata/region","value":"ap"}]`,
			code: 204, after: wantMetadata("m1", map[string]string{"region": "ap", "disk": "ssd"})},
		{name: "remove an announced key", method: "PATCH", path: path, body: `[{"op":"remove","path":"/m1/metadata/disk"}]`,
			code: 204, after: wantMetadata("m1", map[string]string{"region": "us"})},
		{name: "several ops in order", method: "PATCH", path: "/v1-alpha/machines?alt=json", ctype: []string{},
			body: `[{"op":"add","path":"/m1/metadata/a","value":"1"},{"op":"replace","path":"/m1/metadata/a","value":"2"},{"op":"remove","path":"/m1/metadata/region"}]`,
			code: 204, after: wantMetadata("m1", map[string]string{"a": "2", "disk": "ssd"})},
		{name: "no ops", method: "PATCH", path: path, body: `[]`, code: 204},
		{name: "null", method: "PATCH", path: path, body: `null`, code: 204},

		{name: "not an array", method: "PATCH", path: path, body: `{"op":"add"}`, code: 400,
			want: errJSON(400, "unable to decode body: json: cannot unmarshal object into Go value of type []api.MetadataOp")},
		{name: "value of another type", method: "PATCH", path: path, body: `[{"op":"add","path":"/m1/metadata/a","value":5}]`, code: 400,
			want: errJSON(400, `unable to decode body: value must be a string or {"value": string}`)},
		{name: "nested value of another type", method: "PATCH", path: path, body: `[{"op":"add","path":"/m1/metadata/a","value":{"value":5}}]`, code: 400,
			want: errJSON(400, `unable to decode body: value must be a string or {"value": string}: json: cannot unmarshal number into Go struct field .value of type string`)},
		{name: "bad op after a good one", method: "PATCH", path: path,
			body: `[{"op":"add","path":"/m1/metadata/a","value":"1"},{"op":"move","path":"/m1/metadata/b","value":"1"}]`,
			code: 400, want: errJSON(400, `ops[1]: invalid op "move": expect add, remove, or replace`)},
		{name: "bad path", method: "PATCH", path: path, body: `[{"op":"add","path":"/m1/labels/a","value":"1"}]`, code: 400,
			want: errJSON(400, `ops[0]: machine metadata path "/m1/labels/a" invalid: want /<machineID>/metadata/<key>, the key of [A-Za-z0-9_.-]`)},
		{name: "bad key", method: "PATCH", path: path, body: `[{"op":"add","path":"/m1/metadata/a b","value":"1"}]`, code: 400,
			want: errJSON(400, `ops[0]: machine metadata path "/m1/metadata/a b" invalid: want /<machineID>/metadata/<key>, the key of [A-Za-z0-9_.-]`)},
		{name: "add without value", method: "PATCH", path: path, body: `[{"op":"add","path":"/m1/metadata/a"}]`, code: 400,
			want: errJSON(400, "ops[0]: invalid value: add and replace require a value")},
		{name: "replace with an empty nested value", method: "PATCH", path: path, body: `[{"op":"replace","path":"/m1/metadata/a","value":{"value":""}}]`, code: 400,
			want: errJSON(400, "ops[0]: invalid value: add and replace require a value")},
		{name: "value with a control character", method: "PATCH", path: path, body: `[{"op":"add","path":"/m1/metadata/a","value":"x\ny"}]`, code: 400,
			want: errJSON(400, "ops[0]: value must not contain control characters")},
		{name: "machine ID with a control character", method: "PATCH", path: path, body: `[{"op":"add","path":"/m\u00001/metadata/a","value":"x"}]`, code: 400,
			want: errJSON(400, "ops[0]: machine ID in path \"/m\\x001/metadata/a\" invalid: at most 256 bytes, no control characters")},
		{name: "value longer than the limit", method: "PATCH", path: path,
			body: fmt.Sprintf(`[{"op":"add","path":"/m1/metadata/a","value":%q}]`, strings.Repeat("v", MaxMetadataValueLength+1)), code: 400,
			want: errJSON(400, fmt.Sprintf("ops[0]: value is %d bytes, more than the limit of %d", MaxMetadataValueLength+1, MaxMetadataValueLength))},
		{name: "key longer than the limit", method: "PATCH", path: path,
			body: fmt.Sprintf(`[{"op":"add","path":"/m1/metadata/%s","value":"v"}]`, strings.Repeat("k", MaxMetadataKeyLength+1)), code: 400,
			want: errJSON(400, fmt.Sprintf("ops[0]: metadata key is %d bytes, more than the limit of %d", MaxMetadataKeyLength+1, MaxMetadataKeyLength))},
		{name: "machine ID longer than the limit", method: "PATCH", path: path,
			body: fmt.Sprintf(`[{"op":"add","path":"/m1/metadata/a","value":"v"},{"op":"add","path":"/%s/metadata/a","value":"v"}]`, strings.Repeat("m", MaxMachineIDLength+1)), code: 400,
			want: errJSON(400, fmt.Sprintf("ops[1]: machine ID in path %q invalid: at most %d bytes, no control characters", truncate("/"+strings.Repeat("m", MaxMachineIDLength+1)+"/metadata/a", 128), MaxMachineIDLength))},
		{name: "body larger than the limit", method: "PATCH", path: path,
			body: fmt.Sprintf(`[{"op":"add","path":"/m1/metadata/a","value":%q}]`, strings.Repeat("v", 1<<20)), code: 413,
			want: errJSON(413, "request body is larger than the limit of 1048576 bytes")},
		{name: "more ops than the limit", method: "PATCH", path: path, body: manyMetadataOps(MaxMetadataOps + 1), code: 400,
			want: errJSON(400, fmt.Sprintf("patch has %d operations, more than the limit of %d", MaxMetadataOps+1, MaxMetadataOps))},
		{name: "as many ops as the limit", method: "PATCH", path: path, body: manyMetadataOps(MaxMetadataOps), code: 204,
			after: wantMetadata("m1", manyMetadata(MaxMetadataOps))},
	})
}

// manyMetadataOps is a PATCH body that sets n keys of m1.
func manyMetadataOps(n int) string {
	ops := make([]string, n)
	for i := range ops {
		ops[i] = fmt.Sprintf(`{"op":"add","path":"/m1/metadata/k%d","value":"v%d"}`, i, i)
	}
	return "[" + strings.Join(ops, ",") + "]"
}

// manyMetadata is m1's metadata after manyMetadataOps(n).
func manyMetadata(n int) map[string]string {
	m := map[string]string{"region": "us", "disk": "ssd"}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = fmt.Sprintf("v%d", i)
	}
	return m
}
