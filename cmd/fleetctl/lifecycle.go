package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// addWaitFlags registers --no-block and --block-attempts.
func addWaitFlags(cmd *cobra.Command, o *waitOptions) {
	cmd.Flags().BoolVar(&o.noBlock, "no-block", false, "Do not wait until the units have reached the requested state before exiting.")
	cmd.Flags().IntVar(&o.attempts, "block-attempts", 0, "Wait until the units are in the requested state, polling up to this many times (about 2 s each) before giving up. 0 waits forever.")
}

// checkAttempts rejects a negative --block-attempts, and --block-attempts
// given with --no-block.
func checkAttempts(cmd *cobra.Command, o waitOptions) error {
	if o.attempts < 0 {
		return fmt.Errorf("--block-attempts %d: must be 0 (wait forever) or more", o.attempts)
	}
	if o.noBlock && cmd.Flags().Changed("block-attempts") {
		return errors.New("--no-block and --block-attempts cannot be used together")
	}
	return nil
}

// noUnits is fleet's answer to a command given no unit: a note, exit 0.
func (a *app) noUnits() error {
	fmt.Fprintln(a.stderr, "No units given")
	return nil
}

// createAndSet is load and start (spec §2.2): create what is missing (or
// replace, for the states replaceable lists), then set the desired state
// target of each unit not already desiring it, then wait for it unless
// --no-block. It returns the units it changed, which start checks further.
func (a *app) createAndSet(cmd *cobra.Command, args []string, replace bool, wo waitOptions, target core.JobState, verb string, replaceable ...string) ([]api.Unit, error) {
	if err := checkAttempts(cmd, wo); err != nil {
		return nil, err
	}
	names, err := unitNames(args)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if err := core.CheckActivatable(n, target); err != nil {
			return nil, err
		}
	}
	ctx := cmd.Context()
	c, err := a.clientFor(ctx, cmd)
	if err != nil {
		return nil, err
	}
	plan, err := a.planCreates(ctx, c, args, replace, replaceable...)
	if err != nil {
		return nil, err
	}
	if err := a.applyCreates(ctx, c, plan, wo.attempts); err != nil {
		return nil, err
	}
	units, err := findUnits(ctx, c, names)
	if err != nil {
		return nil, err
	}
	changed, err := setTargets(ctx, c, units, target, func(u api.Unit) bool {
		// Already there, or further (load does not stop a launched unit).
		return u.DesiredState == string(target) || target == core.Loaded && u.DesiredState == string(core.Launched)
	})
	if err != nil {
		return nil, err
	}
	return changed, a.waitChanged(ctx, c, changed, wo, string(target), verb, true)
}

// setTargets sets the desired state of each unit that skip does not leave
// alone, in order, and returns those it changed.
func setTargets(ctx context.Context, c fleetclient.Client, units []api.Unit, target core.JobState, skip func(api.Unit) bool) ([]api.Unit, error) {
	var changed []api.Unit
	for _, u := range units {
		if skip(u) {
			continue
		}
		if err := c.SetTargetState(ctx, u.Name, string(target)); err != nil {
			return changed, fmt.Errorf("error setting target state of unit %s: %w", u.Name, err)
		}
		changed = append(changed, u)
	}
	return changed, nil
}

// waitChanged reports or waits for the units whose desired state was just
// set: "Triggered ..." with --no-block and for global units (which never
// block), otherwise the wait for state.
func (a *app) waitChanged(ctx context.Context, c fleetclient.Client, units []api.Unit, wo waitOptions, state, verb string, withMachine bool) error {
	var names []string
	for _, u := range units {
		switch {
		case isGlobal(u):
			fmt.Fprintf(a.stdout, "Triggered global unit %s %s\n", u.Name, verb)
		case wo.noBlock:
			fmt.Fprintf(a.stdout, "Triggered unit %s %s\n", u.Name, verb)
		default:
			names = append(names, u.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return a.waitStates(ctx, c, names, state, wo.attempts, withMachine)
}

// currentOf returns a unit's cluster-level state; a global unit's is its
// desired state.
func currentOf(u api.Unit) string {
	if isGlobal(u) {
		return u.DesiredState
	}
	return u.CurrentState
}

// unitNamesOf lists the names of units.
func unitNamesOf(units []api.Unit) []string {
	out := make([]string, len(units))
	for i, u := range units {
		out[i] = u.Name
	}
	return out
}

// existing looks the named units up; none found is fleet's
// "Units not found in registry", exit 0 (ok false).
func (a *app) existing(cmd *cobra.Command, args []string) (fleetclient.Client, []api.Unit, bool, error) {
	names, err := unitNames(args)
	if err != nil {
		return nil, nil, false, err
	}
	ctx := cmd.Context()
	c, err := a.clientFor(ctx, cmd)
	if err != nil {
		return nil, nil, false, err
	}
	units, err := findUnits(ctx, c, names)
	if err != nil {
		return nil, nil, false, err
	}
	if len(units) == 0 {
		fmt.Fprintln(a.stderr, "Units not found in registry")
		return c, nil, false, nil
	}
	return c, units, true, nil
}

// waitGone waits until names are off every machine: no machine publishes a
// state for them and none is scheduled to a machine any more. It is bounded
// by attempts windows (0: forever) and names what is left on timeout.
func (a *app) waitGone(ctx context.Context, c fleetclient.Client, names []string, attempts int) error {
	deadline := a.deadline(attempts)
	for {
		left, err := leftOnMachines(ctx, c, names)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if a.expired(deadline) {
			var errs []error
			for _, l := range left {
				errs = append(errs, fmt.Errorf("timed out waiting for unit %s", l))
			}
			return errors.Join(errs...)
		}
		if err := a.pause(ctx); err != nil {
			return err
		}
	}
}

// leftOnMachines says where names are still: scheduled to a machine, or
// reported by one.
func leftOnMachines(ctx context.Context, c fleetclient.Client, names []string) ([]string, error) {
	units, err := c.Units(ctx)
	if err != nil {
		return nil, fmt.Errorf("error waiting for units: %w", err)
	}
	states, err := c.UnitStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("error waiting for units: %w", err)
	}
	var left []string
	for _, u := range units {
		if slices.Contains(names, u.Name) && u.MachineID != "" {
			left = append(left, fmt.Sprintf("%s to be unscheduled from %s", u.Name, u.MachineID))
		}
	}
	for _, s := range states {
		if slices.Contains(names, s.Name) {
			left = append(left, fmt.Sprintf("%s to be unloaded from %s", s.Name, s.MachineID))
		}
	}
	return left, nil
}
