package core

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/unit"
)

// Limits on unit files, checked before parsing so that errors name the line.
const (
	// MaxUnitFileSize is the largest unit file fleet accepts, in bytes.
	MaxUnitFileSize = 256 << 10
	// MaxUnitLineLength is the longest line the systemd unit parser accepts.
	MaxUnitLineLength = 2048
	// MaxUnitOptions is the most Name=Value options one unit file may hold.
	MaxUnitOptions = 4096
	// MaxUnitSections is the most distinct [Section] names one unit file may
	// hold.
	MaxUnitSections = 64
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
// (a file path or unit name). Errors name the line and the problem. CRLF line
// ends and a leading UTF-8 byte order mark are accepted.
func ParseUnitFile(name string, data []byte) (*UnitFile, error) {
	if len(data) > MaxUnitFileSize {
		return nil, &UnitFileError{File: name, Reason: fmt.Sprintf("file is %d bytes, larger than the limit of %d", len(data), MaxUnitFileSize)}
	}
	data = normalize(data)
	if err := prescan(name, data); err != nil {
		return nil, err
	}
	opts, err := parseOptions(data)
	if err != nil {
		return nil, &UnitFileError{File: name, Reason: err.Error()}
	}
	uf := &UnitFile{Options: opts}
	uf.canon = serialize(uf.Options)
	uf.hash = HashBytes(uf.canon)
	// The canonical form is what agents write and what the engine reads back:
	// it must parse to the same options, or the file is refused here.
	if again, err := parseOptions(uf.canon); err != nil || !slices.Equal(again, canonicalOrder(opts)) {
		return nil, &UnitFileError{File: name, Reason: "contents do not read back the same once stored (check backslashes at line ends)"}
	}
	return uf, nil
}

// NewUnitFile builds a UnitFile from options, in the given order.
func NewUnitFile(opts []Option) *UnitFile {
	uf := &UnitFile{Options: append([]Option(nil), opts...)}
	uf.canon = serialize(uf.Options)
	uf.hash = HashBytes(uf.canon)
	return uf
}

// byteOrderMark is the UTF-8 byte order mark, accepted at the start of a file.
const byteOrderMark = "\ufeff"

// normalize drops a leading byte order mark and turns CRLF line ends into LF,
// as systemd reads them. (go-systemd would keep the CR before the LF, so that a
// backslash no longer ends the line and the next line stops continuing it.)
func normalize(data []byte) []byte {
	data = bytes.TrimPrefix(data, []byte(byteOrderMark))
	if bytes.Contains(data, []byte("\r\n")) {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	}
	return data
}

// prescan catches what the go-systemd parser gets wrong or reports without a
// line: over-long lines, invalid UTF-8, options before any section, comments
// whose trailing backslash would hide the next line, and malformed section
// headers. It reads
// lines as the parser does: a line after one that ends an option's value in a
// backslash is part of that value, whatever it starts with.
func prescan(name string, data []byte) error {
	lines := strings.Split(string(data), "\n")
	inSection, continues := false, false
	sections, options := map[string]bool{}, 0
	for i, line := range lines {
		n := i + 1
		bad := func(format string, args ...any) error {
			return &UnitFileError{File: name, Line: n, Reason: fmt.Sprintf(format, args...)}
		}
		if len(line) >= MaxUnitLineLength {
			return bad("line is %d bytes; lines must be shorter than %d", len(line), MaxUnitLineLength)
		}
		if !utf8.ValidString(line) {
			// The parser would read each invalid byte as U+FFFD (three bytes),
			// so the file would not be the one the user wrote.
			return bad("line is not valid UTF-8")
		}
		if strings.IndexByte(line, 0) >= 0 {
			return bad("line contains a NUL byte")
		}
		t := strings.TrimSpace(line)
		if continues {
			if t == "" {
				n--
				return bad("line ends in a backslash but no line follows to continue it")
			}
		} else {
			switch {
			case t == "":
				continue
			case t[0] == '#' || t[0] == ';':
				// The parser trims one space, then a backslash continues the comment.
				if strings.HasSuffix(strings.TrimSuffix(line, " "), "\\") {
					return bad("comment ends in a backslash, which would hide the next line")
				}
				continue
			case strings.HasPrefix(t, byteOrderMark):
				return bad("line starts with a byte order mark (U+FEFF), which only the start of the file may hold")
			case t[0] == '[':
				if len(t) < 3 || strings.IndexByte(t, ']') != len(t)-1 {
					return bad("malformed section header %q", t)
				}
				if sections[t] = true; len(sections) > MaxUnitSections {
					return bad("more than %d sections (MaxUnitSections)", MaxUnitSections)
				}
				inSection = true
				continue
			case !inSection:
				return bad("option %q comes before any [Section]", t)
			case !strings.Contains(t, "="):
				return bad("line %q is not Name=Value", t)
			case t[0] == '=':
				return bad("option %q has no name before '='", t)
			}
			if options++; options > MaxUnitOptions {
				return bad("more than %d options (MaxUnitOptions)", MaxUnitOptions)
			}
		}
		// An option's line, or a line continuing its value: the value goes on
		// to the next line if this one ends in a backslash.
		continues = strings.HasSuffix(line, "\\")
		switch {
		case !continues && strings.HasSuffix(strings.TrimRightFunc(line, unicode.IsSpace), "\\"):
			return bad("whitespace after the final backslash: remove it to continue the line, or remove the backslash")
		case continues && i == len(lines)-1:
			return bad("the last line ends in a backslash")
		}
	}
	return nil
}

// parseOptions runs the go-systemd parser.
func parseOptions(data []byte) ([]Option, error) {
	opts, err := unit.DeserializeOptions(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out := make([]Option, 0, len(opts))
	for _, o := range opts {
		out = append(out, Option{Section: o.Section, Name: o.Name, Value: o.Value})
	}
	return out, nil
}

// canonicalOrder is opts in canonical order: sections in first-seen order, the
// options of each section together in their original order.
func canonicalOrder(opts []Option) []Option {
	var order []string
	bySection := map[string][]Option{}
	for _, o := range opts {
		if _, ok := bySection[o.Section]; !ok {
			order = append(order, o.Section)
		}
		bySection[o.Section] = append(bySection[o.Section], o)
	}
	out := make([]Option, 0, len(opts))
	for _, s := range order {
		out = append(out, bySection[s]...)
	}
	return out
}

// serialize is the canonical form: the options in canonicalOrder, each section
// a "[Section]" line then "Name=Value" lines, one blank line between sections.
func serialize(opts []Option) []byte {
	var b bytes.Buffer
	g := canonicalOrder(opts)
	for i, o := range g {
		if i == 0 || o.Section != g[i-1].Section {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString("[" + o.Section + "]\n")
		}
		b.WriteString(o.Name + "=" + o.Value + "\n")
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
