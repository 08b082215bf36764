package core

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestUnitFileLimits: each bound on a unit file is refused with a
// UnitFileError naming it (and the line, once past the size check), and a
// file just within every bound is accepted.
func TestUnitFileLimits(t *testing.T) {
	options := func(n int) string {
		return "[Service]\n" + strings.Repeat("Environment=A=1\n", n)
	}
	sections := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "[X-S%d]\nA=1\n", i)
		}
		return b.String()
	}
	cases := []struct {
		name, data string
		line       int
		want       string
	}{
		{"file size", "[Service]\n" + strings.Repeat("#\n", MaxUnitFileSize/2), 0, fmt.Sprintf("larger than the limit of %d", MaxUnitFileSize)},
		{"line length", "[Service]\nA=" + strings.Repeat("x", MaxUnitLineLength) + "\n", 2, fmt.Sprintf("lines must be shorter than %d", MaxUnitLineLength)},
		{"options", options(MaxUnitOptions + 1), MaxUnitOptions + 2, fmt.Sprintf("more than %d options (MaxUnitOptions)", MaxUnitOptions)},
		{"sections", sections(MaxUnitSections + 1), 2*MaxUnitSections + 1, fmt.Sprintf("more than %d sections (MaxUnitSections)", MaxUnitSections)},
	}
	for _, c := range cases {
		_, err := ParseUnitFile("f.service", []byte(c.data))
		var ue *UnitFileError
		if !errors.As(err, &ue) || ue.Line != c.line || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want line %d mentioning %q", c.name, err, c.line, c.want)
		}
	}
	for _, data := range []string{
		options(MaxUnitOptions),
		sections(MaxUnitSections),
		"[Service]\nA=" + strings.Repeat("x", MaxUnitLineLength-3) + "\n",
		("[Service]\n" + strings.Repeat("#"+strings.Repeat("x", 1000)+"\n", MaxUnitFileSize/1000))[:MaxUnitFileSize],
	} {
		if _, err := ParseUnitFile("f.service", []byte(data)); err != nil {
			t.Errorf("within the limits: %v", err)
		}
	}
}

// TestInvalidUTF8IsRefused: a line that is not valid UTF-8 is refused with its
// line (found by FuzzParseUnitFile: the parser read each invalid byte as
// U+FFFD, so the canonical form grew past the line limit and differed from
// the file).
func TestInvalidUTF8IsRefused(t *testing.T) {
	_, err := ParseUnitFile("x.service", []byte("[Service]\nExec\x93Start=/bin/true\n"))
	var ufe *UnitFileError
	if !errors.As(err, &ufe) || ufe.Line != 2 || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("err = %v, want a UnitFileError for line 2 naming invalid UTF-8", err)
	}
}
