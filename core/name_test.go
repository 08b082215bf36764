package core

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	valid := []string{"foo.service", "foo@.service", "foo@bar.service", "x@y@z.service", `a\x2d.mount`, "a:b_c-d.e.timer", "web.target"}
	for _, n := range valid {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	invalid := map[string]string{
		"":                                    "empty",
		"foo":                                 "no unit type suffix",
		"foo.":                                "ends in '.'",
		"@foo.service":                        "starts with '@'",
		".service":                            "nothing before the unit type suffix",
		"foo.bogus":                           "unknown unit type",
		"foo@bar.mount":                       "cannot be a template",
		"a/b.service":                         "not allowed",
		"../x.service":                        "not allowed",
		"a\x00b.service":                      "not allowed",
		strings.Repeat("a", 300) + ".service": "longer than 255 bytes",
	}
	for n, want := range invalid {
		err := ValidateName(n)
		var ne *NameError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q) = %v, want a NameError mentioning %q", n, err, want)
		}
	}
}

func TestUnitNameParts(t *testing.T) {
	n, err := ParseUnitName("web@8080.service")
	if err != nil {
		t.Fatal(err)
	}
	if n.Prefix != "web" || n.Instance != "8080" || n.Type != "service" || n.IsTemplate() || !n.IsInstance() || n.Template() != "web@.service" {
		t.Errorf("parts of web@8080.service = %+v", n)
	}
	got := n.ExpandSpecifiers("%n %N %p %i %H %%")
	if want := "web@8080.service web@8080 web 8080 %H %%"; got != want {
		t.Errorf("ExpandSpecifiers = %q, want %q", got, want)
	}
	tmpl, _ := ParseUnitName("web@.service")
	if !tmpl.IsTemplate() || tmpl.IsInstance() {
		t.Errorf("web@.service should be a template: %+v", tmpl)
	}
	plain, _ := ParseUnitName("db.service")
	if plain.Prefix != "db" || plain.ExpandSpecifiers("%p-%i") != "db-" {
		t.Errorf("plain name parts: %+v", plain)
	}
}
