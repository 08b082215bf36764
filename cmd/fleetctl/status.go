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
as systemctl status -l prints it on the unit's machine: here when the unit
runs on this machine, otherwise over SSH (--ssh-port, --tunnel); for a
global unit on every machine that reports it. It stops at the first
non-zero exit code, which becomes fleetctl's.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return a.noUnits()
			}
			if err := sshPortFlag(sshPort); err != nil {
				return err
			}
			ctx := cmd.Context()
			type target struct{ unit, machine string }
			var targets []target
			for _, arg := range args {
				u, err := a.placedUnit(ctx, cmd, arg, "loaded")
				if err != nil {
					return err
				}
				machines, err := a.unitMachines(ctx, u)
				if err != nil {
					return err
				}
				if len(machines) == 0 {
					return errorf("Unit %s does not appear to be loaded.", u.Name)
				}
				for _, m := range machines {
					targets = append(targets, target{u.Name, m})
				}
			}
			for i, t := range targets {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				if err := a.onMachine(ctx, t.machine, sshPort, "systemctl", "status", "-l", t.unit); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	return cmd
}
