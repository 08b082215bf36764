package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/internal/version"
)

func (a *app) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and exit",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(a.stdout, "fleetctl version %s\n", version.Version)
			return err
		},
	}
}
