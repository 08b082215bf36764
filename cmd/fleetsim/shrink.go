package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/sim"
)

// shrinkOptions are the options of `fleetsim shrink`.
type shrinkOptions struct {
	streams
	file    string
	outFile string
	budget  int
}

func newShrinkCmd(s streams) *cobra.Command {
	o := &shrinkOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "shrink FILE",
		Short: "Reduce a scenario that breaks an invariant to a short one that still does",
		Long: "shrink runs a scenario file that breaks an invariant, then removes units (a submit\n" +
			"with its start), faults and other commands by delta debugging, keeping the\n" +
			"cluster, the machines, the runs and the views, for as long as the same invariant\n" +
			"still breaks. It prints the shortest scenario found, with empty outputs: run it\n" +
			"with fleetsim run to see them. A scenario written by gen --emit-scenario is a\n" +
			"good input.",
		Example: "  fleetsim gen --seed 7 --faults heavy --emit-scenario run.txt\n  fleetsim shrink run.txt -o small.txt",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			return o.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.outFile, "output-file", "o", "", "write the scenario to this `FILE` instead of stdout")
	f.IntVar(&o.budget, "budget", 500, "at most this many runs of the scenario")
	return cmd
}

func (o *shrinkOptions) run(ctx context.Context) (err error) {
	if o.budget < 1 {
		return fmt.Errorf("--budget %d: want at least 1", o.budget)
	}
	data, err := os.ReadFile(o.file)
	if err != nil {
		return fmt.Errorf("read scenario: %w", err)
	}
	steps, err := sim.ParseScenario(o.file, string(data))
	if err != nil {
		return fmt.Errorf("parse scenario: %w", err)
	}
	etcd, stop := sim.EtcdBackend()
	defer func() {
		if serr := stop(); serr != nil && err == nil {
			err = withStatus(exitInternal, fmt.Errorf("stop etcd: %w", serr))
		}
	}()
	opts := sim.RunOptions{Backends: map[string]sim.BackendFactory{"etcd": etcd}, Context: ctx}
	res, err := sim.RunScenario(steps, opts, func(sim.StepResult) {})
	switch {
	case errors.Is(err, sim.ErrInterrupted):
		return withStatus(exitInterrupted, err)
	case errors.Is(err, sim.ErrBackendFailed):
		return withStatus(exitInternal, err)
	case err != nil:
		return fmt.Errorf("run scenario: %w", err)
	}
	if len(res.Violations) == 0 {
		return fmt.Errorf("%s breaks no invariant: nothing to shrink", o.file)
	}
	inv := res.Violations[0].Invariant
	small, calls := sim.Shrink(steps, sim.BreaksInvariant(inv, opts), o.budget)
	fmt.Fprintf(o.errOut, "fleetsim shrink: %d steps to %d in %d runs; invariant %s still breaks\n", len(steps), len(small), calls, inv)
	text := fmt.Sprintf("# shrunk from %s (%d runs): still breaks invariant %s\n", o.file, calls, inv) + sim.FormatScenario(small)
	if o.outFile == "" {
		_, err := io.WriteString(o.out, text)
		return err
	}
	return writeFile(o.outFile, "--output-file", func(w io.Writer) error {
		_, err := io.WriteString(w, text)
		return err
	})
}
