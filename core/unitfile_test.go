package core

import (
	"errors"
	"strings"
	"testing"

	"pgregory.net/rapid"
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
		"option before section":   {"Description=x\n[Unit]\n", 1, "before any [Section]"},
		"comment backslash":       {"[Unit]\n# note \\\nDescription=x\n", 2, "backslash"},
		"long line":               {"[Unit]\nDescription=" + strings.Repeat("x", 3000) + "\n", 2, "shorter than 2048"},
		"2048-byte line":          {"[Unit]\nD=" + strings.Repeat("x", 2046) + "\n", 2, "shorter than 2048"},
		"space after backslash":   {"[Service]\nExecStart=/bin/echo \\ \nRestart=always\n", 2, "whitespace after the final backslash"},
		"backslash then blank":    {"[Service]\nExecStart=/bin/echo \\\n\nRestart=always\n", 2, "no line follows"},
		"backslash at the end":    {"[Service]\nExecStart=/bin/echo \\", 2, "last line ends in a backslash"},
		"bad header":              {"[Unit]\n[Service\nA=b\n", 2, "malformed section header"},
		"not name=value":          {"[Unit]\nDescription\n", 2, "not Name=Value"},
		"no name":                 {"[Unit]\n = x\n", 2, "no name before '='"},
		"vertical tab after \\":   {"[Service]\nExecStart=/bin/echo \\\v\nRestart=always\n", 2, "whitespace after the final backslash"},
		"no-break space after \\": {"[Service]\nExecStart=/bin/echo \\\u00a0\nRestart=always\n", 2, "whitespace after the final backslash"},
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

func TestLongestLineAccepted(t *testing.T) {
	if _, err := ParseUnitFile("x", []byte("[Unit]\nD="+strings.Repeat("x", 2045)+"\n")); err != nil {
		t.Errorf("a 2047-byte line was refused: %v", err)
	}
}

// TestStoredFormReadsBack: whatever ParseUnitFile accepts, its canonical form
// parses again to the same options and hash, so what agents write is what was
// checked.
func TestStoredFormReadsBack(t *testing.T) {
	setRapidDefaults(t, 2000)
	rapid.Check(t, func(t *rapid.T) {
		pieces := []string{"[Service]", "[X-Fleet]", "ExecStart=/bin/echo", "A=b", " ", "\\", "\\ ", "=", "#c", ";c", "\n", "\n", "\r\n", "x", "\t", "Global=true", "  [ -f x ] ", "# c \\", "]", "\ufeff"}
		var b strings.Builder
		for _, p := range rapid.SliceOfN(rapid.SampledFrom(pieces), 0, 30).Draw(t, "pieces") {
			b.WriteString(p)
		}
		uf, err := ParseUnitFile("f", []byte(b.String()))
		if err != nil {
			return
		}
		again, err := ParseUnitFile("f", uf.Bytes())
		if err != nil {
			t.Fatalf("canonical form %q of %q refused: %v", uf.Bytes(), b.String(), err)
		}
		if again.Hash() != uf.Hash() {
			t.Fatalf("canonical form %q of %q reads back as %q", uf.Bytes(), b.String(), again.Bytes())
		}
	})
}
