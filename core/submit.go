package core

import "fmt"

// Submission is a unit checked and ready to store.
type Submission struct {
	Unit         Unit
	File         *UnitFile
	Requirements Requirements // as written, specifiers not expanded
}

// PrepareUnit checks a unit for submission: a valid name, a parsable file within
// the limits with at least one option, a valid [X-Fleet] section. The returned Unit has its hash and Global
// flag set and the target state inactive.
func PrepareUnit(name string, data []byte) (Submission, error) {
	if err := ValidateName(name); err != nil {
		return Submission{}, err
	}
	uf, err := ParseUnitFile(name, data)
	if err != nil {
		return Submission{}, err
	}
	if len(uf.Options) == 0 {
		return Submission{}, &UnitFileError{File: name, Reason: "unit has no options (an empty file, or only comments and section headers)"}
	}
	req, err := ParseRequirements(name, uf)
	if err != nil {
		return Submission{}, err
	}
	return Submission{
		Unit:         Unit{Name: name, Hash: uf.Hash(), TargetState: Inactive, Global: req.Global},
		File:         uf,
		Requirements: req,
	}, nil
}

// CheckActivatable rejects a desired state other than inactive for a template,
// which cannot run by itself.
func CheckActivatable(name string, target JobState) error {
	n, err := ParseUnitName(name)
	if err != nil {
		return err
	}
	if n.IsTemplate() && target != Inactive {
		return fmt.Errorf("cannot activate template %q", name)
	}
	return nil
}
