package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

func (a *app) newCatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cat UNIT",
		Short: "Output the contents of a submitted unit",
		Long: `Outputs the unit file that is currently loaded in the cluster, as stored:
comments and blank lines are normalized. Useful to verify the correct version
of a unit is running.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errorf("One unit file must be provided")
			}
			name := unitName(args[0])
			ctx := cmd.Context()
			c, err := a.clientFor(ctx, cmd)
			if err != nil {
				return err
			}
			u, err := c.Unit(ctx, name)
			if errors.Is(err, fleetclient.ErrNotFound) {
				return errorf("Unit %s not found", name)
			}
			if err != nil {
				return fmt.Errorf("error retrieving unit %s: %w", name, err)
			}
			_, err = a.stdout.Write(core.NewUnitFile(coreOptions(u.Options)).Bytes())
			return err
		},
	}
}
