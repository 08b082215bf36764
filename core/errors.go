package core

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by Registry and UnitManager implementations and by the
// passes. Wrap them with %w; test them with errors.Is.
var (
	// ErrUnitExists: a unit of that name is already stored (names are create-once).
	ErrUnitExists = errors.New("unit already exists")
	// ErrUnitNotFound: no unit of that name is stored.
	ErrUnitNotFound = errors.New("unit not found")
	// ErrNotLeader: another engine holds the leadership lease.
	ErrNotLeader = errors.New("not the engine leader")
	// ErrStaleFence: a fenced write carried a fence that is no longer current; the
	// writer has been deposed and nothing was written.
	ErrStaleFence = errors.New("stale engine fence")
	// ErrMachineConflict: another live fleetd already holds this machine ID.
	ErrMachineConflict = errors.New("machine ID held by another live fleetd")
	// ErrNotPresent: the machine has no live presence (its lease expired or it left).
	ErrNotPresent = errors.New("machine not present")
	// ErrUnavailable: the backend cannot be reached right now; retry later.
	ErrUnavailable = errors.New("backend unavailable")
)

// NameError reports an invalid unit name.
type NameError struct {
	Name, Reason string
}

func (e *NameError) Error() string { return fmt.Sprintf("invalid unit name %q: %s", e.Name, e.Reason) }

// UnitFileError reports a unit file that cannot be accepted, with the line when known.
type UnitFileError struct {
	File   string
	Line   int
	Reason string
}

func (e *UnitFileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// RequirementsError reports an invalid [X-Fleet] section.
type RequirementsError struct {
	Unit, Option, Reason string
}

func (e *RequirementsError) Error() string {
	if e.Option != "" {
		return fmt.Sprintf("%s: [X-Fleet] %s: %s", e.Unit, e.Option, e.Reason)
	}
	return fmt.Sprintf("%s: [X-Fleet]: %s", e.Unit, e.Reason)
}

// TransitionError reports a desired-state change that the state machine forbids.
type TransitionError struct {
	Unit    string
	Command Command
	From    JobState // "" when the unit does not exist
}

func (e *TransitionError) Error() string {
	from := string(e.From)
	if from == "" {
		from = "none"
	}
	return fmt.Sprintf("cannot %s unit %s: invalid from state %s", e.Command, e.Unit, from)
}
