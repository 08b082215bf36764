package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// streams are where commands write: results to out, diagnostics to errOut.
type streams struct {
	out, errOut io.Writer
}

// The exit statuses of fleetsim: each means one thing. When several files run,
// the worst status wins, in the order of statusRank.
const (
	exitOK          = 0
	exitInvariant   = 1   // an invariant broke
	exitUsage       = 2   // bad flags or arguments, an unreadable or malformed scenario
	exitExpectation = 3   // an expectation (expect ..., or an output with --check) was not met
	exitInternal    = 4   // fleetsim itself failed: a panic, a backend that does not start
	exitInterrupted = 130 // SIGINT or SIGTERM: the report so far was printed
)

// statusRank orders the statuses from the least to the most severe.
var statusRank = []int{exitOK, exitExpectation, exitInvariant, exitUsage, exitInternal, exitInterrupted}

// worse returns the more severe of two statuses.
func worse(a, b int) int {
	rank := func(s int) int {
		for i, r := range statusRank {
			if r == s {
				return i
			}
		}
		return len(statusRank)
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// statusError is an error with the exit status it stands for. A status error
// without an error has already been reported.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.status)
	}
	return e.err.Error()
}

func (e *statusError) Unwrap() error { return e.err }

// withStatus marks err with an exit status.
func withStatus(status int, err error) error { return &statusError{status: status, err: err} }

// execute runs fleetsim with args and returns its exit status; ctx ends a run
// early (a signal). It is the one place that turns errors into exit statuses,
// and a panic into exitInternal.
func execute(ctx context.Context, args []string, s streams) (status int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(s.errOut, "fleetsim: internal error: %v\n%s", r, debug.Stack())
			status = exitInternal
		}
	}()
	root := newRootCmd(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var se *statusError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &se):
		if se.err != nil {
			fmt.Fprintln(s.errOut, "fleetsim:", se.err)
		}
		return se.status
	default:
		fmt.Fprintln(s.errOut, "fleetsim:", err)
		return exitUsage
	}
}

const exitStatusHelp = "Exit status: 0 ok; 1 an invariant broke; 2 bad usage or input (the message\n" +
	"names the file and line, or the value and its accepted range); 3 an expectation\n" +
	"was not met (an expect command, or an output with --check); 4 an internal error;\n" +
	"130 interrupted (SIGINT or SIGTERM), after printing the report so far. With\n" +
	"several files, each runs and the worst status wins (130, 4, 2, 1, 3, 0)."

func newRootCmd(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "fleetsim",
		Short: "Run fleet's deterministic cluster simulator",
		Long: "fleetsim runs a whole fleet cluster in one process on virtual time: scenario\n" +
			"files, or generated clusters with faults. The seed is printed first; the same\n" +
			"seed replays the same run. The scenario language is described in\n" +
			"docs/scenarios.md.\n\n" + exitStatusHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(s.out)
	root.SetErr(s.errOut)
	root.AddCommand(newRunCmd(s), newGenCmd(s), newShrinkCmd(s))
	return root
}
