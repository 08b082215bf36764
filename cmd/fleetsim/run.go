package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/sim"
)

// runOptions are the options of `fleetsim run`.
type runOptions struct {
	streams
	files    []string
	check    bool
	verbose  bool
	seed     uint64
	seedSet  bool
	backend  string
	backends map[string]sim.BackendFactory
	extras   runExtras
}

func newRunCmd(s streams) *cobra.Command {
	o := &runOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "run FILE...",
		Short: "Run scenario files, printing each command and its output",
		Long: "run executes scenario files (a command, optional input, \"----\", expected\n" +
			"output, blank line) and prints each command with its output, in the same\n" +
			"format. With --check each output must equal the expected one. Each file runs\n" +
			"on a cluster (and registry) of its own. The language is described in\n" +
			"docs/scenarios.md; its commands:\n\n" + indent(sim.ScenarioCommands) + "\n\n" + exitStatusHelp,
		Example: "  fleetsim run --check examples/scenarios/failover.txt\n" +
			"  fleetsim run --check --backend etcd examples/scenarios/*.txt",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.files = args
			o.seedSet = cmd.Flags().Changed("seed")
			return o.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.check, "check", false, "fail when an output differs from the expected one")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "also print the agents' lines (tasks, presence expiry)")
	f.Uint64Var(&o.seed, "seed", 0, "replace the seed of the scenarios' cluster commands (0 to 2^64-1)")
	f.StringVar(&o.backend, "backend", "", "run every scenario on this registry backend, whatever its cluster command says: memory, or etcd (embedded)")
	o.extras.add(f)
	return cmd
}

func indent(text string) string { return "  " + strings.ReplaceAll(text, "\n", "\n  ") }

func (o *runOptions) run(ctx context.Context) (err error) {
	if o.streams, err = o.extras.begin(o.streams, len(o.files)); err != nil {
		return withStatus(exitUsage, err)
	}
	etcdBackend, stopEtcd := sim.EtcdBackend()
	defer func() {
		if serr := stopEtcd(); serr != nil && err == nil {
			err = withStatus(exitInternal, fmt.Errorf("stop etcd: %w", serr))
		}
	}()
	o.backends = map[string]sim.BackendFactory{"etcd": etcdBackend}
	if o.backend != "" && o.backend != "memory" && o.backends[o.backend] == nil {
		return withStatus(exitUsage, fmt.Errorf("--backend %q: want memory or etcd", o.backend))
	}
	status, failed := exitOK, 0
	for _, file := range o.files {
		s := o.runFile(ctx, file)
		status = worse(status, s)
		if s != exitOK {
			failed++
		}
		if s == exitInterrupted {
			break
		}
	}
	if err := o.extras.end(); err != nil {
		return withStatus(exitInternal, err)
	}
	if status != exitOK {
		return withStatus(status, fmt.Errorf("%d of %d scenario files failed", failed, len(o.files)))
	}
	return nil
}

// maxScenarioSize bounds the size of a scenario file.
const maxScenarioSize = 64 << 20

// runFile runs one scenario file and returns its exit status. It reports its
// own errors, and turns a panic into exitInternal.
func (o *runOptions) runFile(ctx context.Context, file string) (status int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(o.errOut, "%s: internal error: %v\n%s", file, r, debug.Stack())
			status = exitInternal
		}
	}()
	fail := func(status int, err error) int {
		fmt.Fprintf(o.errOut, "fleetsim: %v\n", err)
		return status
	}
	if st, err := os.Stat(file); err != nil {
		return fail(exitUsage, fmt.Errorf("read scenario: %w", err))
	} else if st.Size() > maxScenarioSize {
		return fail(exitUsage, fmt.Errorf("read scenario: %s: %d bytes, want at most %d", file, st.Size(), maxScenarioSize))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("read scenario: %w", err))
	}
	steps, err := sim.ParseScenario(file, string(data))
	if err != nil {
		return fail(exitUsage, err)
	}
	if o.seedSet {
		steps = sim.WithSeed(steps, o.seed)
	}
	seed, err := sim.ScenarioSeed(steps)
	if err != nil {
		return fail(exitUsage, err)
	}
	fmt.Fprintf(o.out, "# seed %d: %s\n", seed, file)
	res, err := sim.RunScenario(steps, sim.RunOptions{Verbose: o.verbose, Backends: o.backends, Backend: o.backend, Context: ctx, Progress: o.extras.progress}, o.printStep)
	status = exitOK
	verdict := "ok"
	switch {
	case errors.Is(err, sim.ErrInterrupted):
		status, verdict = exitInterrupted, "interrupted"
	case errors.Is(err, sim.ErrBackendFailed):
		return fail(exitInternal, err)
	case err != nil:
		return fail(exitUsage, err)
	case len(res.Violations) > 0:
		status, verdict = exitInvariant, "FAILED"
	case len(res.Unmet) > 0 || (o.check && res.Mismatches > 0):
		status, verdict = exitExpectation, "FAILED"
	}
	fmt.Fprintf(o.out, "# %s: %s: %d of %d steps, %d invariants broken, %d expectations not met", file, verdict, res.Steps, len(steps), len(res.Violations), len(res.Unmet))
	if o.check {
		fmt.Fprintf(o.out, ", %d outputs differ", res.Mismatches)
	}
	fmt.Fprintf(o.out, "; trace sha256 %s\n", res.TraceHash)
	if err := o.extras.file(o.out, file, len(steps), o.check, res); err != nil {
		return fail(exitUsage, err)
	}
	for _, v := range res.Violations {
		fmt.Fprintf(o.errOut, "%s: seed %d: %v\n", file, seed, v)
	}
	for _, u := range res.Unmet {
		fmt.Fprintf(o.errOut, "%s: seed %d: %s\n", file, seed, u)
	}
	if status == exitInterrupted {
		fmt.Fprintf(o.errOut, "fleetsim: %v: the report above is of the run so far\n", err)
	}
	return status
}

// printStep prints a step as a scenario file would hold it, its actual output as
// the expectation; with --check, a differing output is also shown on errOut.
func (o *runOptions) printStep(r sim.StepResult) {
	var b strings.Builder
	b.WriteString(r.Command() + "\n")
	if r.Input != "" {
		b.WriteString(r.Input + "\n")
	}
	b.WriteString("----\n")
	if strings.Contains(strings.TrimSuffix(r.Got, "\n"), "\n\n") {
		b.WriteString("----\n" + r.Got + "----\n----\n")
	} else {
		b.WriteString(r.Got)
	}
	b.WriteString("\n")
	fmt.Fprint(o.out, b.String())
	if o.check && !r.Matches() {
		fmt.Fprintf(o.errOut, "%s: %s: output differs\n--- want\n%s+++ got\n%s", r.Pos, r.Command(), r.Want, r.Got)
	}
}
