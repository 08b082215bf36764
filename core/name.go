package core

import (
	"fmt"
	"strings"
)

// MaxUnitNameLength is the longest unit name fleet accepts, in bytes: the
// longest file name Linux file systems and systemd take.
const MaxUnitNameLength = 255

// UnitTypes lists every unit type (name suffix) fleet accepts, in one place for the
// API, the agent and the client alike.
var UnitTypes = []string{
	"automount", "busname", "device", "mount", "path", "scope", "service",
	"slice", "snapshot", "socket", "swap", "target", "timer",
}

// TemplateUnitTypes lists the unit types that may be templates or instances.
var TemplateUnitTypes = []string{"path", "service", "socket", "target", "timer"}

// IsUnitType reports whether suffix (without the dot) is a known unit type.
func IsUnitType(suffix string) bool { return contains(UnitTypes, suffix) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ValidateName checks a unit name against fleet's rules: at most 255 bytes, a known
// unit type as suffix, only [A-Za-z0-9:_.\@-] before the suffix, no leading '@',
// a name before the suffix, and a template-capable type when the name
// contains '@'.
func ValidateName(name string) error {
	switch {
	case name == "":
		return &NameError{Name: name, Reason: "name is empty"}
	case len(name) > MaxUnitNameLength:
		return &NameError{Name: name, Reason: fmt.Sprintf("name is longer than %d bytes", MaxUnitNameLength)}
	case !strings.Contains(name, "."):
		return &NameError{Name: name, Reason: "name has no unit type suffix (such as .service)"}
	case strings.HasSuffix(name, "."):
		return &NameError{Name: name, Reason: "name ends in '.'"}
	case strings.HasPrefix(name, "@"):
		return &NameError{Name: name, Reason: "name starts with '@'"}
	}
	dot := strings.LastIndex(name, ".")
	base, suffix := name[:dot], name[dot+1:]
	if base == "" {
		return &NameError{Name: name, Reason: "name has nothing before the unit type suffix"}
	}
	if !IsUnitType(suffix) {
		return &NameError{Name: name, Reason: fmt.Sprintf("unknown unit type %q (known: %s)", suffix, strings.Join(UnitTypes, ", "))}
	}
	if strings.Contains(name, "@") && !contains(TemplateUnitTypes, suffix) {
		return &NameError{Name: name, Reason: fmt.Sprintf("unit type %q cannot be a template or instance", suffix)}
	}
	for i := 0; i < len(base); i++ {
		if !nameChar(base[i]) {
			return &NameError{Name: name, Reason: fmt.Sprintf("character %q at byte %d is not allowed", base[i], i)}
		}
	}
	return nil
}

func nameChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte(":_.\\@-", c) >= 0
}

// UnitName is a parsed, valid unit name.
type UnitName struct {
	Full     string // foo@bar.service
	Prefix   string // foo: before the first '@', or the whole name without suffix
	Instance string // bar: after the first '@' up to the last '.'; empty if none
	Type     string // service
	isTmpl   bool
}

// ParseUnitName validates name and splits it into its parts.
func ParseUnitName(name string) (UnitName, error) {
	if err := ValidateName(name); err != nil {
		return UnitName{}, err
	}
	dot := strings.LastIndex(name, ".")
	un := UnitName{Full: name, Prefix: name[:dot], Type: name[dot+1:]}
	if at := strings.IndexByte(name[:dot], '@'); at >= 0 {
		un.Prefix = name[:at]
		un.Instance = name[at+1 : dot]
		un.isTmpl = un.Instance == ""
	}
	return un, nil
}

// IsTemplate reports whether the name is a template (foo@.service).
func (n UnitName) IsTemplate() bool { return n.isTmpl }

// IsInstance reports whether the name is an instance of a template (foo@bar.service).
func (n UnitName) IsInstance() bool { return n.Instance != "" }

// Template returns the template name an instance comes from (foo@.service), or "".
func (n UnitName) Template() string {
	if !n.IsInstance() {
		return ""
	}
	return n.Prefix + "@." + n.Type
}

// WithoutSuffix is the %N specifier: the full name without the type suffix.
func (n UnitName) WithoutSuffix() string { return strings.TrimSuffix(n.Full, "."+n.Type) }

// ExpandSpecifiers replaces %n, %N, %p and %i in value with the parts of the unit
// name. It is plain string replacement, as in fleet: no unescaping and no %%;
// other specifiers are left as they are.
func (n UnitName) ExpandSpecifiers(value string) string {
	if !strings.Contains(value, "%") {
		return value
	}
	r := strings.NewReplacer("%n", n.Full, "%N", n.WithoutSuffix(), "%p", n.Prefix, "%i", n.Instance)
	return r.Replace(value)
}
