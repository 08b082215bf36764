package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// Poll timing of the waits, as fleet's: one attempt polls every 250 ms for up
// to 2 s.
const (
	defaultPollInterval = 250 * time.Millisecond
	defaultAttemptTime  = 2 * time.Second
)

// app is one fleetctl invocation: its streams, environment and options. No
// state lives in package variables, so tests run many in one process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	global globalOptions

	// Wait timing (tests shorten it) and the local machine ID file.
	pollInterval  time.Duration
	attemptTime   time.Duration
	machineIDFile string
	// isTerminal reports whether stderr is a terminal (progress lines).
	isTerminal func() bool
	// execLocal runs a command on this machine (status, journal) and
	// returns its exit code.
	execLocal func(ctx context.Context, name string, args ...string) (int, error)

	client   fleetclient.Client // opened on first use by clientFor
	tunnel   *tunnel            // --tunnel's connection, if any
	machines []api.Machine      // read once by machineList
	// stdinLines reads answers to host-key prompts.
	stdinLines *bufio.Reader
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	a := &app{
		stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		pollInterval:  defaultPollInterval,
		attemptTime:   defaultAttemptTime,
		machineIDFile: "/etc/machine-id",
	}
	a.execLocal = a.runCommand
	a.isTerminal = a.stderrIsTerminal
	return a
}

// exitError ends the command with a given exit code; its message, if any, has
// already been printed or is printed by run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode ends the command with code and no further message.
func exitCode(code int) error { return &exitError{code: code} }

// run executes one command line and returns the exit code: 0 on success, the
// code of an *exitError, and 1 for every other error (including cobra's own:
// unknown command, unknown flag, bad flag value). Ending ctx stops every
// wait and request.
func (a *app) run(ctx context.Context, args []string) int {
	defer a.closeClient()
	root := a.newRootCmd()
	if args == nil {
		args = []string{} // cobra reads os.Args for nil
	}
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := a.applyEnv(root)
	if err == nil {
		err = root.ExecuteContext(ctx)
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(a.stderr, ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(a.stderr, err)
	return 1
}

func (a *app) closeClient() {
	if a.client != nil {
		a.client.Close()
		a.client = nil
	}
	if a.tunnel != nil {
		a.tunnel.Close()
		a.tunnel = nil
	}
}

// stderrIsTerminal reports whether progress lines may be drawn on stderr.
func (a *app) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// errorf is an error that ends the command with exit code 1 and message.
func errorf(format string, args ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, args...)}
}
