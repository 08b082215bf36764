package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Limits on a configuration file, so that a hostile or broken file costs little.
const (
	// maxFileBytes is the largest configuration file read.
	maxFileBytes = 1 << 20
	// maxLineBytes is the longest line of a configuration file.
	maxLineBytes = 64 << 10
)

// entry is one key=value setting of a configuration file, with its line.
type entry struct {
	key, value string
	line       int
}

// parseINI reads fleet's configuration file format (goini, as fleet.conf):
// global key = value lines; keys case-insensitive; values bare, "double" or
// 'single' quoted; a bare value ends at # or ; (a comment); a line ending in a
// backslash continues on the next; # and ; at the start of a line begin a
// comment. Sections are refused: every fleet option is global. Errors name the
// file and line.
func parseINI(file string, data []byte) ([]entry, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than the limit of %d bytes", file, maxFileBytes)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("%s: contains a NUL byte", file)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	var out []entry
	var pending strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if pending.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			pending.WriteString(strings.TrimSuffix(line, `\`))
			continue
		}
		pending.WriteString(line)
		e, ok, err := parseLine(pending.String())
		pending.Reset()
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, start, err)
		}
		if ok {
			e.line = start
			out = append(out, e)
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("%s:%d: line longer than the limit of %d bytes", file, n+1, maxLineBytes)
	} else if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", file, n+1, err)
	}
	if pending.Len() > 0 {
		return nil, fmt.Errorf("%s:%d: the file ends inside a continued line", file, start)
	}
	return out, nil
}

// parseLine parses one logical line; ok is false for a blank or comment line.
func parseLine(line string) (entry, bool, error) {
	s := strings.TrimSpace(line)
	switch {
	case s == "" || s[0] == '#' || s[0] == ';':
		return entry{}, false, nil
	case s[0] == '[':
		return entry{}, false, fmt.Errorf("section %s: fleet's options are global, sections are not allowed", s)
	}
	k, v, found := strings.Cut(s, "=")
	if !found {
		return entry{}, false, fmt.Errorf("%q is not key = value", s)
	}
	k = strings.ToLower(strings.TrimSpace(k))
	if k == "" {
		return entry{}, false, fmt.Errorf("%q has no key", s)
	}
	val, err := parseValue(strings.TrimSpace(v))
	if err != nil {
		return entry{}, false, fmt.Errorf("%s: %w", k, err)
	}
	return entry{key: k, value: val}, true, nil
}

// parseValue reads a quoted or bare value.
func parseValue(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if q := v[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(v[1:], q)
		if end < 0 {
			return "", fmt.Errorf("value %s has no closing %c", v, q)
		}
		rest := strings.TrimSpace(v[end+2:])
		if rest != "" && rest[0] != '#' && rest[0] != ';' {
			return "", fmt.Errorf("text %q after the quoted value", rest)
		}
		return v[1 : end+1], nil
	}
	if i := strings.IndexAny(v, "#;"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v), nil
}
