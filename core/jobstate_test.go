package core

import (
	"errors"
	"testing"
)

func TestTransitions(t *testing.T) {
	ok := []struct {
		cmd  Command
		from JobState
		to   JobState
	}{
		{CmdSubmit, "", Inactive}, {CmdLoad, "", Loaded}, {CmdLoad, Inactive, Loaded},
		{CmdStart, Loaded, Launched}, {CmdStart, "", Launched}, {CmdStop, Launched, Loaded},
		{CmdUnload, Loaded, Inactive}, {CmdUnload, Launched, Inactive}, {CmdDestroy, Launched, ""},
	}
	for _, c := range ok {
		got, err := Transition("u", c.cmd, c.from)
		if err != nil || got != c.to {
			t.Errorf("%s from %q = %q, %v; want %q", c.cmd, c.from, got, err, c.to)
		}
	}
	bad := []struct {
		cmd  Command
		from JobState
	}{{CmdSubmit, Inactive}, {CmdStop, Loaded}, {CmdStop, ""}, {CmdUnload, Inactive}, {CmdLoad, Launched}}
	for _, c := range bad {
		_, err := Transition("u", c.cmd, c.from)
		var te *TransitionError
		if !errors.As(err, &te) {
			t.Errorf("%s from %q: err = %v, want *TransitionError", c.cmd, c.from, err)
		}
	}
	if _, err := ParseJobState("running"); err == nil {
		t.Error("ParseJobState accepted an invalid state")
	}
}
