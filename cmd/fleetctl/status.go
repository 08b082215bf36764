package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) newStatusCmd() *cobra.Command {
	var sshPort int
	cmd := &cobra.Command{
		Use:   "status [--ssh-port=N] UNIT...",
		Short: "Output the status of one or more units in the cluster",
		Long: `Output the status of one or more units currently running in the cluster,
as systemctl status -l prints it on the unit's machine. The exit code is
systemctl's.

Only units on this machine are supported yet (running systemctl over SSH on
other machines is not).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return a.noUnits()
			}
			ctx := cmd.Context()
			for i, arg := range args {
				u, err := a.placedUnit(ctx, cmd, arg, "loaded")
				if err != nil {
					return err
				}
				if isGlobal(u) {
					return errorf("Unable to show the status of global unit %s: not supported yet", u.Name)
				}
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				if err := a.onMachine(ctx, u, "systemctl", "status", "-l", u.Name); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	return cmd
}
