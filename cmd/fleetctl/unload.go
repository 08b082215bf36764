package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/core"
)

func (a *app) newUnloadCmd() *cobra.Command {
	var wo waitOptions
	cmd := &cobra.Command{
		Use:   "unload [--no-block|--block-attempts=N] UNIT...",
		Short: "Unschedule one or more units in the cluster.",
		Long: `Unload one or more units: stop them if they run and remove them from their
machine's systemd, keeping them in the cluster (inactive).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkAttempts(cmd, wo); err != nil {
				return err
			}
			c, units, ok, err := a.existing(cmd, args)
			if !ok {
				return err
			}
			ctx := cmd.Context()
			changed, err := setTargets(ctx, c, units, core.Inactive, func(u api.Unit) bool {
				return u.DesiredState == string(core.Inactive) && currentOf(u) == string(core.Inactive)
			})
			if err != nil {
				return err
			}
			if err := a.waitChanged(ctx, c, changed, wo, string(core.Inactive), "unload", false); err != nil {
				return err
			}
			if !wo.noBlock {
				// Inactive is decided when the unit is unscheduled; wait
				// also until its machine no longer reports it.
				var names []string
				for _, u := range changed {
					if !isGlobal(u) {
						names = append(names, u.Name)
					}
				}
				if err := a.waitGone(ctx, c, names, wo.attempts); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "Successfully unloaded units %v.\n", unitNamesOf(changed))
			}
			return nil
		},
	}
	addWaitFlags(cmd, &wo)
	return cmd
}
