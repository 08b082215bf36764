package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

func (a *app) newDestroyCmd() *cobra.Command {
	var wo waitOptions
	cmd := &cobra.Command{
		Use:   "destroy [--no-block|--block-attempts=N] UNIT...",
		Short: "Destroy one or more units in the cluster",
		Long: `Completely remove one or more running or submitted units from the cluster.

Instructs systemd on the host machine to stop the unit, deferring to systemd
completely for any custom stop directives (i.e. ExecStop option in the unit
file). Unless --no-block is given, waits until no machine reports the unit
any more.

Destroyed units are impossible to start unless re-submitted.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkAttempts(cmd, wo); err != nil {
				return err
			}
			if len(args) == 0 {
				return a.noUnits()
			}
			c, units, ok, err := a.existing(cmd, args)
			if !ok {
				return err
			}
			ctx := cmd.Context()
			var errs []error
			var destroyed []string
			for _, u := range units {
				err := c.DestroyUnit(ctx, u.Name)
				if err != nil && !errors.Is(err, fleetclient.ErrNotFound) {
					errs = append(errs, fmt.Errorf("Error destroying units: %w", err))
					continue
				}
				destroyed = append(destroyed, u.Name)
				fmt.Fprintf(a.stdout, "Destroyed %s\n", u.Name)
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			if wo.noBlock {
				return nil
			}
			return a.waitGone(ctx, c, destroyed, wo.attempts)
		},
	}
	addWaitFlags(cmd, &wo)
	return cmd
}
