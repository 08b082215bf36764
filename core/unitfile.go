package core

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// Limits on unit files, checked before parsing so that errors name the line.
const (
	// MaxUnitFileSize is the largest unit file fleet accepts, in bytes.
	MaxUnitFileSize = 256 << 10
	// MaxUnitLineLength is the longest line the systemd unit parser accepts.
	MaxUnitLineLength = 2048
)

// Hash identifies unit contents: the hex SHA-1 of the canonical serialization.
type Hash string

// Short is the 7-character form of the hash shown by fleetctl.
func (h Hash) Short() string {
	if len(h) < 7 {
		return string(h)
	}
	return string(h[:7])
}

// HashBytes returns the Hash of already-canonical unit contents.
func HashBytes(b []byte) Hash {
	sum := sha1.Sum(b)
	return Hash(hex.EncodeToString(sum[:]))
}

// Option is one Name=Value line of a unit file, with its section.
type Option struct {
	Section, Name, Value string
}

// UnitFile is a parsed unit file. Its canonical form and hash ignore comments,
// blank lines and whitespace around names and values.
type UnitFile struct {
	Options []Option
	canon   []byte
	hash    Hash
}

// ParseUnitFile parses a systemd unit file. name is used in error messages only
// (a file path or unit name). Errors name the line and the problem.
func ParseUnitFile(name string, data []byte) (*UnitFile, error) {
	if len(data) > MaxUnitFileSize {
		return nil, &UnitFileError{File: name, Reason: fmt.Sprintf("file is %d bytes, larger than the limit of %d", len(data), MaxUnitFileSize)}
	}
	if err := prescan(name, data); err != nil {
		return nil, err
	}
	opts, err := unit.DeserializeOptions(bytes.NewReader(data))
	if err != nil {
		return nil, &UnitFileError{File: name, Reason: err.Error()}
	}
	uf := &UnitFile{Options: make([]Option, 0, len(opts))}
	for _, o := range opts {
		uf.Options = append(uf.Options, Option{Section: o.Section, Name: o.Name, Value: o.Value})
	}
	uf.canon = serialize(uf.Options)
	uf.hash = HashBytes(uf.canon)
	return uf, nil
}

// NewUnitFile builds a UnitFile from options, in the given order.
func NewUnitFile(opts []Option) *UnitFile {
	uf := &UnitFile{Options: append([]Option(nil), opts...)}
	uf.canon = serialize(uf.Options)
	uf.hash = HashBytes(uf.canon)
	return uf
}

// prescan catches what the go-systemd parser gets wrong or reports without a line:
// over-long lines, options before any section, comments whose trailing backslash
// would swallow the next line, and malformed section headers.
func prescan(name string, data []byte) error {
	inSection, prevContinues := false, false
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		isContinuation := prevContinues
		prevContinues = strings.HasSuffix(strings.TrimRight(line, " \t\r"), "\\")
		if len(line) > MaxUnitLineLength {
			return &UnitFileError{File: name, Line: n, Reason: fmt.Sprintf("line is %d bytes, longer than the limit of %d", len(line), MaxUnitLineLength)}
		}
		if strings.IndexByte(line, 0) >= 0 {
			return &UnitFileError{File: name, Line: n, Reason: "line contains a NUL byte"}
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "":
		case t[0] == '#' || t[0] == ';':
			if strings.HasSuffix(t, "\\") {
				return &UnitFileError{File: name, Line: n, Reason: "comment ends in a backslash, which would hide the next line"}
			}
		case t[0] == '[':
			if !strings.HasSuffix(t, "]") || len(t) < 3 {
				return &UnitFileError{File: name, Line: n, Reason: fmt.Sprintf("malformed section header %q", t)}
			}
			inSection = true
		case !inSection:
			return &UnitFileError{File: name, Line: n, Reason: fmt.Sprintf("option %q comes before any [Section]", t)}
		case !strings.Contains(t, "=") && !isContinuation:
			return &UnitFileError{File: name, Line: n, Reason: fmt.Sprintf("line %q is not Name=Value", t)}
		}
	}
	return nil
}

// serialize is the canonical form: sections in first-seen order, options grouped
// by section in their original order, "[Section]" then "Name=Value" lines, one
// blank line between sections.
func serialize(opts []Option) []byte {
	var order []string
	bySection := map[string][]Option{}
	for _, o := range opts {
		if _, ok := bySection[o.Section]; !ok {
			order = append(order, o.Section)
		}
		bySection[o.Section] = append(bySection[o.Section], o)
	}
	var b bytes.Buffer
	for i, s := range order {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("[" + s + "]\n")
		for _, o := range bySection[s] {
			b.WriteString(o.Name + "=" + o.Value + "\n")
		}
	}
	return b.Bytes()
}

// Bytes returns the canonical serialization, which the agent writes to disk.
func (u *UnitFile) Bytes() []byte { return u.canon }

// Hash returns the hex SHA-1 of the canonical serialization.
func (u *UnitFile) Hash() Hash { return u.hash }

// Section returns the options of one section, in order.
func (u *UnitFile) Section(section string) []Option {
	var out []Option
	for _, o := range u.Options {
		if o.Section == section {
			out = append(out, o)
		}
	}
	return out
}

// HasSection reports whether the file has at least one option in section.
func (u *UnitFile) HasSection(section string) bool { return len(u.Section(section)) > 0 }
