package core

import (
	"errors"
	"strings"
	"testing"
)

// FuzzUnitName checks unit names and template expansion: an accepted name
// stays within MaxUnitNameLength, holds no '/' and no NUL, and its parts put
// back together give the name; an instance built from an accepted template
// is either a valid instance of that template (the template itself for an
// empty instance) or refused with a NameError;
// specifier expansion never panics and replaces every %n %N %p %i.
func FuzzUnitName(f *testing.F) {
	for _, s := range [][3]string{
		{"web.service", "", "%n %N %p %i"},
		{"web@.service", "8080", "ExecStart=/bin/serve -p %i on %n"},
		{"x@y@z.service", "a@b", "%%i %i%"},
		{`a\x2d.mount`, "", "%p"},
		{"../x.service", "..", "%n"},
		{"a/b.service", "b/c", ""},
		{"db@.timer", "\x00", "%N"},
		{strings.Repeat("a", 247) + "@.service", "b", "%i"},
		{".service", "", ""},
		{"@.service", "i", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, name, instance, value string) {
		un, err := ParseUnitName(name)
		if err != nil {
			var ne *NameError
			if !errors.As(err, &ne) {
				t.Fatalf("error %v (%T) is not a NameError", err, err)
			}
			return
		}
		checkValidName(t, un)
		if got := un.ExpandSpecifiers(value); !strings.Contains(value, "%") && got != value {
			t.Fatalf("ExpandSpecifiers(%q) = %q, changed a value without specifiers", value, got)
		}
		if !un.IsTemplate() {
			return
		}
		inst, err := ParseUnitName(un.Prefix + "@" + instance + "." + un.Type)
		if err != nil {
			var ne *NameError
			if !errors.As(err, &ne) {
				t.Fatalf("instance error %v (%T) is not a NameError", err, err)
			}
			return
		}
		checkValidName(t, inst)
		if instance == "" {
			if !inst.IsTemplate() || inst.Full != un.Full {
				t.Fatalf("%q with an empty instance is %q, not the template", un.Full, inst.Full)
			}
			return
		}
		if !inst.IsInstance() || inst.Template() != un.Full || inst.Instance != instance {
			t.Fatalf("instance %q of %q: IsInstance %v, Template %q, Instance %q", inst.Full, un.Full, inst.IsInstance(), inst.Template(), inst.Instance)
		}
		if got, want := inst.ExpandSpecifiers("%i"), instance; got != want {
			t.Fatalf("%%i of %q expands to %q, want %q", inst.Full, got, want)
		}
	})
}

// checkValidName fails t unless un is a name fleet can store and write to disk.
func checkValidName(t *testing.T, un UnitName) {
	t.Helper()
	n := un.Full
	switch {
	case len(n) > MaxUnitNameLength:
		t.Fatalf("accepted a name of %d bytes", len(n))
	case strings.ContainsAny(n, "/\x00"):
		t.Fatalf("accepted %q, which holds '/' or NUL", n)
	case un.Prefix == "":
		t.Fatalf("accepted %q, which has nothing before the type or '@'", n)
	case !IsUnitType(un.Type):
		t.Fatalf("accepted %q of unknown type %q", n, un.Type)
	}
	rebuilt := un.Prefix
	if un.IsInstance() || un.IsTemplate() {
		rebuilt += "@" + un.Instance
	}
	if rebuilt += "." + un.Type; rebuilt != n {
		t.Fatalf("parts of %q put back together give %q", n, rebuilt)
	}
	if un.WithoutSuffix()+"."+un.Type != n {
		t.Fatalf("WithoutSuffix of %q is %q", n, un.WithoutSuffix())
	}
}
