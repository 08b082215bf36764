package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/sim"
)

// genOptions are the options of `fleetsim gen`.
type genOptions struct {
	streams
	cfg     sim.GenConfig
	seedSet bool
	trace   string
	backend string
	extras  genExtras
}

func newGenCmd(s streams) *cobra.Command {
	o := &genOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Run a generated cluster with faults and print a report",
		Long: "gen builds a cluster of --machines machines, starts --units units with a mix of\n" +
			"constraints, injects --faults for --duration of virtual time, heals, and waits\n" +
			"for convergence. The report gives convergence times, units per machine,\n" +
			"failovers and their latencies, and the seven invariants. Without --seed a\n" +
			"random seed is drawn; it is printed first.",
		Example: "  fleetsim gen --machines 100 --units 1000 --faults heavy --duration 30m --seed 1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.seedSet = cmd.Flags().Changed("seed")
			if !cmd.Flags().Changed("engines") {
				o.cfg.Engines = 0 // the default: 3, or every machine if fewer
			}
			return o.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.cfg.Machines, "machines", 10, fmt.Sprintf("machines in the cluster (1 to %d)", sim.MaxGenMachines))
	f.IntVar(&o.cfg.Engines, "engines", 3, "machines that also run an engine (1 to --machines)")
	f.IntVar(&o.cfg.Units, "units", 100, fmt.Sprintf("units to submit and start (0 to %d)", sim.MaxGenUnits))
	f.Uint64Var(&o.cfg.Seed, "seed", 0, "seed of every random choice, 0 to 2^64-1 (default: drawn at random)")
	f.StringVar(&o.cfg.Faults, "faults", sim.FaultsLight, "fault level: none, light or heavy")
	f.DurationVar(&o.cfg.Duration, "duration", 5*time.Minute, fmt.Sprintf("virtual time of the fault phase (up to %s)", sim.MaxGenDuration))
	f.StringVar(&o.trace, "trace", "", "write the whole trace to this file")
	f.StringVar(&o.backend, "backend", "memory", "registry backend: memory, or etcd (embedded)")
	o.extras.add(f)
	return cmd
}

func (o *genOptions) run(ctx context.Context) (err error) {
	if err := o.cfg.Validate(); err != nil {
		return withStatus(exitUsage, err)
	}
	if err := o.extras.prepare(o.streams, &o.cfg); err != nil {
		return withStatus(exitUsage, err)
	}
	switch o.backend {
	case "memory":
	case "etcd":
		factory, stop := sim.EtcdBackend()
		defer func() {
			if serr := stop(); serr != nil && err == nil {
				err = withStatus(exitInternal, fmt.Errorf("stop etcd: %w", serr))
			}
		}()
		o.cfg.Backend = factory
	default:
		return withStatus(exitUsage, fmt.Errorf("--backend %q: want memory or etcd", o.backend))
	}
	if !o.seedSet {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return withStatus(exitInternal, fmt.Errorf("draw a seed: %w", err))
		}
		o.cfg.Seed = binary.LittleEndian.Uint64(b[:])
	}
	// The report starts with the seed; say it now too, in case the run never ends.
	fmt.Fprintf(o.errOut, "fleetsim gen: seed %d\n", o.cfg.Seed)
	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return withStatus(exitUsage, fmt.Errorf("--trace: %w", err))
		}
		w := bufio.NewWriter(f)
		defer func() {
			if ferr := w.Flush(); ferr != nil && err == nil {
				err = withStatus(exitInternal, fmt.Errorf("--trace: %w", ferr))
			}
			if cerr := f.Close(); cerr != nil && err == nil {
				err = withStatus(exitInternal, fmt.Errorf("--trace: %w", cerr))
			}
		}()
		o.cfg.Trace = w
	}
	o.cfg.Context = ctx
	rep, err := sim.Generate(o.cfg)
	if err != nil {
		return withStatus(exitInternal, err)
	}
	if err := o.extras.finish(o.streams, rep, o.cfg.Backend); err != nil {
		return withStatus(exitUsage, err)
	}
	switch {
	case ctx.Err() != nil:
		return withStatus(exitInterrupted, fmt.Errorf("seed %d: interrupted during %s: the report above is of the run so far", rep.Seed, rep.Stopped))
	case !rep.OK() || rep.Stopped != "":
		return withStatus(exitInvariant, fmt.Errorf("seed %d: an invariant broke", rep.Seed))
	}
	return nil
}
