package main

import (
	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/core"
)

func (a *app) newLoadCmd() *cobra.Command {
	var wo waitOptions
	var replace, sign bool
	cmd := &cobra.Command{
		Use:   "load [--no-block|--block-attempts=N] UNIT...",
		Short: "Schedule one or more units in the cluster, first submitting them if necessary.",
		Long: `Load one or many units in the cluster into systemd, but do not start.

Select units to load by glob matching for units in the current working directory
or matching the names of previously submitted units.

For units which are not global, load operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to a loaded state. This behaviour can be configured with the
respective --block-attempts and --no-block options. Load operations on global
units are always non-blocking.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if sign {
				return errSigned
			}
			if len(args) == 0 {
				return a.noUnits()
			}
			_, err := a.createAndSet(cmd, args, replace, wo, core.Loaded, "load", string(core.Inactive), string(core.Loaded))
			return err
		},
	}
	addWaitFlags(cmd, &wo)
	cmd.Flags().BoolVar(&replace, "replace", false, "Replace the old scheduled units in the cluster with new versions.")
	cmd.Flags().BoolVar(&sign, "sign", false, "DEPRECATED - this option cannot be used")
	_ = cmd.Flags().MarkHidden("sign")
	return cmd
}
