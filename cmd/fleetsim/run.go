package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/fleet-rebuild/fleet/sim"
	"github.com/spf13/cobra"
)

// runOptions are the options of `fleetsim run`.
type runOptions struct {
	streams
	files    []string
	check    bool
	verbose  bool
	seed     uint64
	seedSet  bool
	backends map[string]sim.BackendFactory
	extras   runExtras
}

func newRunCmd(s streams) *cobra.Command {
	o := &runOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "run FILE...",
		Short: "Run scenario files, printing each command and its output",
		Long: "run executes scenario files (the datadriven format of sim/testdata/scenarios:\n" +
			"a command, optional input, \"----\", expected output, blank line) and prints\n" +
			"each command with its output, in the same format. With --check each output\n" +
			"must equal the expected one.",
		Example: "  fleetsim run --check examples/scenarios/failover.txt\n" +
			"  (a scenario's `cluster backend=etcd` runs it on an embedded etcd)",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.files = args
			o.seedSet = cmd.Flags().Changed("seed")
			return o.run()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.check, "check", false, "fail when an output differs from the expected one")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "also print the agents' lines (tasks, presence expiry)")
	f.Uint64Var(&o.seed, "seed", 0, "replace the seed of the scenarios' cluster commands")
	o.extras.add(f)
	return cmd
}

func (o *runOptions) run() (err error) {
	if o.streams, err = o.extras.begin(o.streams, len(o.files)); err != nil {
		return err
	}
	etcdBackend, stopEtcd := sim.LazyEtcdBackend()
	defer func() {
		if serr := stopEtcd(); serr != nil && err == nil {
			err = fmt.Errorf("stop etcd: %w", serr)
		}
	}()
	o.backends = map[string]sim.BackendFactory{"etcd": etcdBackend}
	failed := 0
	for _, file := range o.files {
		ok, err := o.runFile(file)
		if err != nil {
			return err
		}
		if !ok {
			failed++
		}
	}
	if err := o.extras.end(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenario files: %w", failed, len(o.files), errFailed)
	}
	return nil
}

// runFile runs one scenario file and reports whether it passed: invariants held
// and, with --check, every output as expected.
func (o *runOptions) runFile(file string) (bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return false, fmt.Errorf("read scenario: %w", err)
	}
	steps, err := sim.ParseScenario(file, string(data))
	if err != nil {
		return false, fmt.Errorf("parse scenario: %w", err)
	}
	if o.seedSet {
		steps = sim.WithSeed(steps, o.seed)
	}
	seed, err := sim.ScenarioSeed(steps)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(o.out, "# seed %d: %s\n", seed, file)
	res, err := sim.RunScenario(steps, sim.RunOptions{Verbose: o.verbose, Backends: o.backends, Progress: o.extras.progress}, o.printStep)
	if err != nil {
		return false, fmt.Errorf("run scenario: %w", err)
	}
	ok := len(res.Violations) == 0 && (!o.check || res.Mismatches == 0)
	verdict := "ok"
	if !ok {
		verdict = "FAILED"
	}
	fmt.Fprintf(o.out, "# %s: %s: %d steps, %d invariants broken", file, verdict, len(steps), len(res.Violations))
	if o.check {
		fmt.Fprintf(o.out, ", %d outputs differ", res.Mismatches)
	}
	fmt.Fprintf(o.out, "; trace sha256 %s\n", res.TraceHash)
	if err := o.extras.file(file, len(steps), o.check, res); err != nil {
		return false, err
	}
	for _, v := range res.Violations {
		fmt.Fprintf(o.errOut, "%s: seed %d: %v\n", file, seed, v)
	}
	return ok, nil
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
