package core

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParseUnitFile checks the unit file parser and the canonical form on
// arbitrary bytes: the parser never panics, refuses with a UnitFileError,
// and what it accepts is within the limits and serializes to a form that
// parses back to the same options and the same hash.
func FuzzParseUnitFile(f *testing.F) {
	for _, s := range []string{
		"[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/sleep 1d\n",
		"[Service]\nExecStart=/bin/sh -c \\\n  'echo hi'\n",
		"\ufeff[Service]\r\nExecStart=/bin/true\r\n",
		"# comment\n; other\n[X-Fleet]\nConflicts=web@*.service\nMachineMetadata=\"region=us\" \"disk=ssd\"\n",
		"[A]\nx=1\n[B]\ny=2\n[A]\nz=3\n",
		"[Service]\nExecStart=a\\\n\n",
		"[Service]\nExecStart=a\\ \n",
		"[Service]\n# hidden \\\nExecStart=a\n",
		"x=1\n",
		"[Service\nx=1\n",
		"[Service]\nnovalue\n",
		"[Service]\n =  spaced  \n",
		"[Service]\nExecStart=" + strings.Repeat("a", MaxUnitLineLength) + "\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		uf, err := ParseUnitFile("fuzz.service", data)
		if err != nil {
			var ue *UnitFileError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T) is not a UnitFileError", err, err)
			}
			return
		}
		checkUnitFileLimits(t, data, uf)
		again, err := ParseUnitFile("again.service", uf.Bytes())
		if err != nil {
			t.Fatalf("the canonical form does not parse: %v\n%q", err, uf.Bytes())
		}
		if again.Hash() != uf.Hash() || !bytes.Equal(again.Bytes(), uf.Bytes()) {
			t.Fatalf("hash changed on the round trip: %s -> %s\n%q\n%q", uf.Hash(), again.Hash(), uf.Bytes(), again.Bytes())
		}
		if !slices.Equal(grouped(uf.Options), again.Options) {
			t.Fatalf("options changed on the round trip:\n%q\n%q", uf.Options, again.Options)
		}
		if built := NewUnitFile(uf.Options); built.Hash() != uf.Hash() {
			t.Fatalf("NewUnitFile of the parsed options has hash %s, want %s", built.Hash(), uf.Hash())
		}
	})
}

// checkUnitFileLimits fails t unless an accepted file keeps every limit.
func checkUnitFileLimits(t *testing.T, data []byte, uf *UnitFile) {
	t.Helper()
	if len(data) > MaxUnitFileSize {
		t.Fatalf("accepted a file of %d bytes", len(data))
	}
	if len(uf.Options) > MaxUnitOptions {
		t.Fatalf("accepted %d options", len(uf.Options))
	}
	sections := map[string]bool{}
	for _, o := range uf.Options {
		sections[o.Section] = true
		if strings.ContainsRune(o.Section+o.Name+o.Value, 0) {
			t.Fatalf("option %q holds a NUL", o)
		}
	}
	if len(sections) > MaxUnitSections {
		t.Fatalf("accepted %d sections", len(sections))
	}
}

// grouped orders options as the canonical form does: by section in
// first-seen order, each section's options in their order.
func grouped(opts []Option) []Option {
	var order []string
	seen := map[string]bool{}
	for _, o := range opts {
		if !seen[o.Section] {
			seen[o.Section] = true
			order = append(order, o.Section)
		}
	}
	out := make([]Option, 0, len(opts))
	for _, s := range order {
		for _, o := range opts {
			if o.Section == s {
				out = append(out, o)
			}
		}
	}
	return out
}
