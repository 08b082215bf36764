package core

import "fmt"

// JobState is a unit's state at cluster level: inactive (known, not placed), loaded
// (placed and loaded into a machine's systemd) or launched (started).
type JobState string

// The three job states.
const (
	Inactive JobState = "inactive"
	Loaded   JobState = "loaded"
	Launched JobState = "launched"
)

// ParseJobState parses one of "inactive", "loaded", "launched".
func ParseJobState(s string) (JobState, error) {
	switch js := JobState(s); js {
	case Inactive, Loaded, Launched:
		return js, nil
	}
	return "", fmt.Errorf("invalid job state %q (want inactive, loaded or launched)", s)
}

// rank orders states: inactive < loaded < launched.
func (s JobState) rank() int {
	switch s {
	case Loaded:
		return 1
	case Launched:
		return 2
	}
	return 0
}

// Command is a user command that changes a unit's desired state.
type Command string

// The commands of fleet's desired-state table.
const (
	CmdSubmit  Command = "submit"
	CmdLoad    Command = "load"
	CmdStart   Command = "start"
	CmdStop    Command = "stop"
	CmdUnload  Command = "unload"
	CmdDestroy Command = "destroy"
)

// transitions is fleet's desired-state table: the desired state each command sets
// and the states ("" = the unit does not exist) it is valid from.
var transitions = map[Command]struct {
	to   JobState
	from []JobState
}{
	CmdSubmit:  {Inactive, []JobState{""}},
	CmdLoad:    {Loaded, []JobState{"", Inactive}},
	CmdStart:   {Launched, []JobState{"", Inactive, Loaded}},
	CmdStop:    {Loaded, []JobState{Launched}},
	CmdUnload:  {Inactive, []JobState{Launched, Loaded}},
	CmdDestroy: {"", []JobState{"", Inactive, Loaded, Launched}},
}

// Transition returns the desired state that cmd sets for a unit whose current
// desired state is from ("" if it does not exist), or a *TransitionError.
// Destroy returns "".
func Transition(unit string, cmd Command, from JobState) (JobState, error) {
	t, ok := transitions[cmd]
	if !ok {
		return "", fmt.Errorf("unknown command %q", cmd)
	}
	for _, f := range t.from {
		if f == from {
			return t.to, nil
		}
	}
	return "", &TransitionError{Unit: unit, Command: cmd, From: from}
}
