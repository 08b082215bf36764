package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
)

func (a *app) newStatusCmd() *cobra.Command {
	var sshPort int
	cmd := &cobra.Command{
		Use:   "status [--ssh-port=N] UNIT...",
		Short: "Output the status of one or more units in the cluster",
		Long: `Output the status of one or more units currently running in the cluster,
as systemctl status -l prints it on the unit's machine: here when the unit
runs on this machine, otherwise over SSH (--ssh-port, --tunnel). The exit
code is systemctl's.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return a.noUnits()
			}
			if err := sshPortFlag(sshPort); err != nil {
				return err
			}
			ctx := cmd.Context()
			var units []api.Unit
			for _, arg := range args {
				u, err := a.placedUnit(ctx, cmd, arg, "loaded")
				if err != nil {
					return err
				}
				if isGlobal(u) {
					return errorf("Unable to show the status of global unit %s: not supported yet", u.Name)
				}
				units = append(units, u)
			}
			for i, u := range units {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				if err := a.onMachine(ctx, u, sshPort, "systemctl", "status", "-l", u.Name); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	return cmd
}
