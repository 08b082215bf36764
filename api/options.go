package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/fleet-rebuild/fleet/core"
)

// decodeBody reads r's JSON body into v: at most Config.MaxBodyBytes (413
// beyond), exactly one JSON value (400 otherwise). Unknown fields are
// ignored, as by fleet, so a client may send back a Unit it read.
func (h *handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) *httpError {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); err == nil {
			err = errors.New("unexpected data after the JSON value")
		} else if errors.Is(err, io.EOF) {
			return nil
		}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of %d bytes", tooLarge.Limit))
	}
	return badRequest("unable to decode body: %v", err)
}

// prepareOptions checks the options of a PUT and prepares the unit they make:
// limits and shape here, with the option named; then core.PrepareUnit on
// their canonical form (the unit file and [X-Fleet] rules); last, that the
// canonical form reads back as the options given (in canonical order, names
// and values trimmed), so that no value smuggles in a line of its own.
func prepareOptions(name string, opts []UnitOption) (core.Submission, *httpError) {
	if len(opts) > MaxUnitOptions {
		return core.Submission{}, badRequest("unit has %d options, more than the limit of %d", len(opts), MaxUnitOptions)
	}
	given := make([]core.Option, len(opts))
	for i, o := range opts {
		if err := checkOption(o); err != nil {
			return core.Submission{}, badRequest("%s: %v", optionLabel(i, o), err)
		}
		given[i] = core.Option{Section: o.Section, Name: strings.TrimSpace(o.Name), Value: strings.TrimSpace(o.Value)}
	}
	sub, err := core.PrepareUnit(name, core.NewUnitFile(given).Bytes())
	if err != nil {
		return core.Submission{}, badRequest("invalid options: %v", err)
	}
	if !slices.Equal(sub.File.Options, canonicalOrder(given)) {
		return core.Submission{}, badRequest("options do not read back as given once stored as a unit file (a value or name with line breaks, leading comment characters or trailing backslashes?)")
	}
	return sub, nil
}

// checkOption checks one option's shape and sizes.
func checkOption(o UnitOption) error {
	name := strings.TrimSpace(o.Name)
	switch {
	case o.Section == "":
		return errors.New("section is empty")
	case strings.ContainsAny(o.Section, "[]\n\r\x00"):
		return errors.New("section must not contain '[', ']', line breaks or NUL")
	case len(o.Section)+2 >= core.MaxUnitLineLength:
		return fmt.Errorf("section is %d bytes; a section line must be shorter than %d", len(o.Section)+2, core.MaxUnitLineLength)
	case name == "":
		return errors.New("name is empty")
	case strings.ContainsAny(name, "=\n\r\x00"):
		return errors.New("name must not contain '=', line breaks or NUL")
	case name[0] == '#' || name[0] == ';':
		return errors.New("name must not start with a comment character ('#' or ';')")
	case strings.ContainsAny(o.Value, "\r\x00"):
		return errors.New("value must not contain a carriage return or NUL")
	case strings.HasSuffix(strings.TrimSpace(o.Value), "\\"):
		return errors.New("value must not end in a backslash, which would continue it into the next line")
	}
	lines := strings.Split(strings.TrimSpace(o.Value), "\n")
	for i, line := range lines {
		if i > 0 && !strings.HasSuffix(lines[i-1], "\\") {
			return errors.New("value has a line break that does not directly follow a backslash (a continuation)")
		}
		if i == 0 {
			line = name + "=" + line
		}
		if len(line) >= core.MaxUnitLineLength {
			return fmt.Errorf("line %d of the option is %d bytes; lines must be shorter than %d", i+1, len(line), core.MaxUnitLineLength)
		}
	}
	return nil
}

// optionLabel names option i in an error message.
func optionLabel(i int, o UnitOption) string {
	return fmt.Sprintf("options[%d] (section %q, name %q)", i, truncate(o.Section, 64), truncate(o.Name, 64))
}

// canonicalOrder is the order of options in their canonical form: grouped by
// section in first-seen order, in original order within a section.
func canonicalOrder(opts []core.Option) []core.Option {
	var sections []string
	bySection := map[string][]core.Option{}
	for _, o := range opts {
		if _, ok := bySection[o.Section]; !ok {
			sections = append(sections, o.Section)
		}
		bySection[o.Section] = append(bySection[o.Section], o)
	}
	out := make([]core.Option, 0, len(opts))
	for _, s := range sections {
		out = append(out, bySection[s]...)
	}
	return out
}
