package core

import (
	"errors"
	"strings"
	"testing"
)

// TestContinuationLinesAreValue: a line that continues an option's value is
// part of the value, as go-systemd and fleet read it, whatever it starts with.
func TestContinuationLinesAreValue(t *testing.T) {
	cases := map[string]struct{ data, value string }{
		"bracket": {"[Service]\nExecStartPre=/bin/sh -c '\\\n  [ -f /etc/foo ] || touch /etc/foo'\n",
			"/bin/sh -c '\\\n  [ -f /etc/foo ] || touch /etc/foo'"},
		"hash": {"[Service]\nExecStart=/bin/foo \\\n  # not a comment \\\n  --bar\n",
			"/bin/foo \\\n  # not a comment \\\n  --bar"},
		"semicolon and no equals": {"[Service]\nExecStart=/bin/foo \\\n;bar \\\nbaz\n",
			"/bin/foo \\\n;bar \\\nbaz"},
		"CRLF": {"[Service]\r\nExecStart=/bin/sh -c '\\\r\n  [ -f /etc/foo ] || true'\r\nType=simple\r\n",
			"/bin/sh -c '\\\n  [ -f /etc/foo ] || true'"},
		"BOM": {"\ufeff[Service]\nExecStart=/bin/true\n", "/bin/true"},
	}
	for name, c := range cases {
		uf, err := ParseUnitFile("f.service", []byte(c.data))
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
			continue
		}
		if got := uf.Section("Service"); len(got) == 0 || got[0].Name != "ExecStartPre" && got[0].Name != "ExecStart" || got[0].Value != c.value {
			t.Errorf("%s: options = %+v, want the first with value %q", name, uf.Options, c.value)
		}
	}
	crlf, _ := ParseUnitFile("a", []byte("[Unit]\r\nDescription=x\r\n\r\n[Service]\r\nExecStart=/bin/true\r\n"))
	lf, _ := ParseUnitFile("b", []byte("[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n"))
	if crlf == nil || lf == nil || crlf.Hash() != lf.Hash() {
		t.Error("CRLF line ends changed the options")
	}
}

// TestPrescanFollowsTheParser: what the pre-parse checks refuse, they refuse
// naming the line, and they never refuse what the parser reads as intended.
func TestPrescanFollowsTheParser(t *testing.T) {
	cases := map[string]struct {
		data string
		line int
		want string
	}{
		"comment hides next line":       {"[Unit]\n# note \\\nDescription=x\n", 2, "comment ends in a backslash"},
		"comment, one space after":      {"[Unit]\n# note \\ \nDescription=x\n", 2, "comment ends in a backslash"},
		"garbage after section header":  {"[Unit] x\nDescription=x\n", 1, "malformed section header"},
		"two closing brackets":          {"[Unit]]\nDescription=x\n", 1, "malformed section header"},
		"BOM inside the file":           {"[Unit]\n\ufeffDescription=x\n", 2, "byte order mark"},
		"continuation then blank, CRLF": {"[Service]\r\nExecStart=/bin/echo \\\r\n\r\nA=b\r\n", 2, "no line follows"},
	}
	for name, c := range cases {
		_, err := ParseUnitFile("f.service", []byte(c.data))
		var ue *UnitFileError
		if !errors.As(err, &ue) || ue.Line != c.line || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want line %d mentioning %q", name, err, c.line, c.want)
		}
	}
	for name, data := range map[string]string{
		"comment with tab after backslash": "[Unit]\n# note \\\t\nDescription=x\n",
		"comment before any section":       "# a\n; b\n[Unit]\nDescription=x\n",
	} {
		if _, err := ParseUnitFile("f.service", []byte(data)); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}
