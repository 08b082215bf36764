package main

import (
	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/core"
)

func (a *app) newSubmitCmd() *cobra.Command {
	var replace, sign bool
	cmd := &cobra.Command{
		Use:   "submit UNIT...",
		Short: "Upload one or more units to the cluster without starting them",
		Long: `Upload one or more units to the cluster without starting them. Useful
for validating units before they are started.

This operation is idempotent; if a named unit already exists in the cluster, it will not be resubmitted.

Submit a single unit:
	fleetctl submit foo.service

Submit a directory of units with glob matching:
	fleetctl submit myservice/*`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if sign {
				return errSigned
			}
			if len(args) == 0 {
				return a.noUnits()
			}
			ctx := cmd.Context()
			if _, err := unitNames(args); err != nil {
				return err
			}
			c, err := a.clientFor(ctx, cmd)
			if err != nil {
				return err
			}
			plan, err := a.planCreates(ctx, c, args, replace, string(core.Inactive))
			if err != nil {
				return err
			}
			return a.applyCreates(ctx, c, plan, 0)
		},
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "Replace the old scheduled units in the cluster with new versions.")
	cmd.Flags().BoolVar(&sign, "sign", false, "DEPRECATED - this option cannot be used")
	_ = cmd.Flags().MarkHidden("sign")
	return cmd
}
