package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/fleet-rebuild/fleet/sim"
	"github.com/spf13/cobra"
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
			return o.run()
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.cfg.Machines, "machines", 10, "machines in the cluster")
	f.IntVar(&o.cfg.Engines, "engines", 3, "machines that also run an engine")
	f.IntVar(&o.cfg.Units, "units", 100, "units to submit and start")
	f.Uint64Var(&o.cfg.Seed, "seed", 0, "seed of every random choice (default: drawn at random)")
	f.StringVar(&o.cfg.Faults, "faults", sim.FaultsLight, "fault level: none, light or heavy")
	f.DurationVar(&o.cfg.Duration, "duration", 5*time.Minute, "virtual time of the fault phase")
	f.StringVar(&o.trace, "trace", "", "write the whole trace to this file")
	f.StringVar(&o.backend, "backend", "memory", "registry backend: memory, or etcd (embedded)")
	o.extras.add(f)
	return cmd
}

func (o *genOptions) run() (err error) {
	if err := o.extras.prepare(o.streams, &o.cfg); err != nil {
		return err
	}
	if !o.seedSet {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("draw a seed: %w", err)
		}
		o.cfg.Seed = binary.LittleEndian.Uint64(b[:])
	}
	// The report starts with the seed; say it now too, in case the run never ends.
	fmt.Fprintf(o.errOut, "fleetsim gen: seed %d\n", o.cfg.Seed)
	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		w := bufio.NewWriter(f)
		defer func() {
			if ferr := w.Flush(); ferr != nil && err == nil {
				err = fmt.Errorf("trace: %w", ferr)
			}
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("trace: %w", cerr)
			}
		}()
		o.cfg.Trace = w
	}
	switch o.backend {
	case "memory":
	case "etcd":
		factory, stop := sim.LazyEtcdBackend()
		defer func() {
			if serr := stop(); serr != nil && err == nil {
				err = fmt.Errorf("stop etcd: %w", serr)
			}
		}()
		o.cfg.Backend = factory
	default:
		return fmt.Errorf("--backend %q: want memory or etcd", o.backend)
	}
	rep, err := sim.Generate(o.cfg)
	if err != nil {
		return err
	}
	if err := o.extras.finish(o.streams, rep, o.cfg.Backend); err != nil {
		return err
	}
	if !rep.OK() || rep.Stopped != "" {
		return fmt.Errorf("seed %d: %w", rep.Seed, errFailed)
	}
	return nil
}
