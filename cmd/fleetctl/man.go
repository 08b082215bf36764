package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/fleet-rebuild/fleet/internal/version"
)

// newManCmd writes fleetctl's man pages, one per command (section 1).
func (a *app) newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIRECTORY",
		Short:  "Generate man pages into DIRECTORY",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			header := &doc.GenManHeader{Title: "FLEETCTL", Section: "1", Source: "fleetctl " + version.Version, Manual: "fleet"}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return fmt.Errorf("generating man pages: %w", err)
			}
			return nil
		},
	}
}
