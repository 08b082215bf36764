package core

import (
	"errors"
	"strings"
	"testing"
)

func TestHashIgnoresCommentsAndBlankLines(t *testing.T) {
	a, err := ParseUnitFile("a", []byte("[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseUnitFile("b", []byte("# comment\n[Unit]\n  Description = x  \n; other\n\n\n[Service]\nExecStart=/bin/true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Errorf("hash changed with comments/blank lines: %s vs %s", a.Hash(), b.Hash())
	}
	c, _ := ParseUnitFile("c", []byte("[Unit]\nDescription=y\n\n[Service]\nExecStart=/bin/true\n"))
	if c.Hash() == a.Hash() {
		t.Error("different contents gave the same hash")
	}
	if len(a.Hash()) != 40 || a.Hash().Short() != string(a.Hash()[:7]) {
		t.Errorf("hash %q is not 40 hex characters", a.Hash())
	}
	if got, want := string(a.Bytes()), "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n"; got != want {
		t.Errorf("canonical form = %q, want %q", got, want)
	}
	if HashBytes(a.Bytes()) != a.Hash() {
		t.Error("HashBytes of the canonical form differs from Hash")
	}
}

func TestCanonicalGroupsSectionsInFirstSeenOrder(t *testing.T) {
	uf, err := ParseUnitFile("x", []byte("[Service]\nA=1\n[Unit]\nB=2\n[Service]\nC=3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(uf.Bytes()), "[Service]\nA=1\nC=3\n\n[Unit]\nB=2\n"; got != want {
		t.Errorf("canonical = %q, want %q", got, want)
	}
}

func TestUnitFileErrorsNameTheLine(t *testing.T) {
	cases := map[string]struct {
		data string
		line int
		want string
	}{
		"option before section": {"Description=x\n[Unit]\n", 1, "before any [Section]"},
		"comment backslash":     {"[Unit]\n# note \\\nDescription=x\n", 2, "backslash"},
		"long line":             {"[Unit]\nDescription=" + strings.Repeat("x", 3000) + "\n", 2, "longer than the limit"},
		"bad header":            {"[Unit]\n[Service\nA=b\n", 2, "malformed section header"},
		"not name=value":        {"[Unit]\nDescription\n", 2, "not Name=Value"},
	}
	for name, c := range cases {
		_, err := ParseUnitFile("f.service", []byte(c.data))
		var ue *UnitFileError
		if !errors.As(err, &ue) || ue.Line != c.line || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want line %d mentioning %q", name, err, c.line, c.want)
		}
	}
	_, err := ParseUnitFile("big", make([]byte, MaxUnitFileSize+1))
	if err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("oversized file: err = %v", err)
	}
}

func TestContinuationLines(t *testing.T) {
	uf, err := ParseUnitFile("x", []byte("[Service]\nExecStart=/bin/sh -c \\\n  true\n"))
	if err != nil {
		t.Fatalf("continuation rejected: %v", err)
	}
	if len(uf.Section("Service")) != 1 {
		t.Errorf("want one option, got %+v", uf.Options)
	}
}
