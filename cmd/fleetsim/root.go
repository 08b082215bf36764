package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// streams are where commands write: results to out, diagnostics to errOut.
type streams struct {
	out, errOut io.Writer
}

// The exit statuses of fleetsim.
const (
	exitOK     = 0
	exitFailed = 1 // an invariant broke or a checked output differed
	exitUsage  = 2 // bad flags or arguments, unreadable or malformed input
)

// errFailed marks a run that completed but failed its checks; the command has
// already printed why.
var errFailed = errors.New("failed")

// execute runs fleetsim with args and returns its exit status. It is the one place
// that turns errors into exit statuses.
func execute(args []string, s streams) int {
	root := newRootCmd(s)
	root.SetArgs(args)
	err := root.Execute()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFailed):
		fmt.Fprintln(s.errOut, "fleetsim:", err)
		return exitFailed
	default:
		fmt.Fprintln(s.errOut, "fleetsim:", err)
		return exitUsage
	}
}

func newRootCmd(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "fleetsim",
		Short: "Run fleet's deterministic cluster simulator",
		Long: "fleetsim runs a whole fleet cluster in one process on virtual time: scenario\n" +
			"files, or generated clusters with faults. The seed is printed first; the same\n" +
			"seed replays the same run. Exit status 1 means an invariant broke or a checked\n" +
			"output differed; 2 means bad usage or input.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(s.out)
	root.SetErr(s.errOut)
	root.AddCommand(newRunCmd(s), newGenCmd(s), newShrinkCmd(s))
	return root
}
