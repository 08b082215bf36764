package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/core"
)

func (a *app) newStopCmd() *cobra.Command {
	var wo waitOptions
	cmd := &cobra.Command{
		Use:   "stop [--no-block|--block-attempts=N] UNIT...",
		Short: "Instruct systemd to stop one or more units in the cluster.",
		Long: `Stop one or more units from running in the cluster, but allow them to be
started again in the future.

Instructs systemd on the host machine to stop the unit, deferring to systemd
completely for any custom stop directives (i.e. ExecStop option in the unit
file).

For units which are not global, stop operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to a loaded state. Stop operations on global units are always
non-blocking.

Stop a single unit:
	fleetctl stop foo.service`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkAttempts(cmd, wo); err != nil {
				return err
			}
			c, units, ok, err := a.existing(cmd, args)
			if !ok {
				return err
			}
			for _, u := range units {
				if !isGlobal(u) && u.CurrentState == string(core.Inactive) {
					return errorf("Unable to stop unit %s in state %s", u.Name, u.CurrentState)
				}
			}
			ctx := cmd.Context()
			changed, err := setTargets(ctx, c, units, core.Loaded, func(u api.Unit) bool {
				// Only a launched unit is stopped: a non-global one already
				// loaded, or a global one not desired launched, is left.
				return !isGlobal(u) && u.CurrentState == string(core.Loaded) || isGlobal(u) && u.DesiredState != string(core.Launched)
			})
			if err != nil {
				return err
			}
			if err := a.waitChanged(ctx, c, changed, wo, string(core.Loaded), "stop", true); err != nil {
				return err
			}
			if !wo.noBlock {
				fmt.Fprintf(a.stderr, "Successfully stopped units %v.\n", unitNamesOf(changed))
			}
			return nil
		},
	}
	addWaitFlags(cmd, &wo)
	return cmd
}
