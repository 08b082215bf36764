package main

import (
	"strconv"

	"github.com/spf13/cobra"
)

// journalOptions are journal's flags.
type journalOptions struct {
	lines   int
	follow  bool
	sshPort int
	sudo    bool
	output  string
}

func (a *app) newJournalCmd() *cobra.Command {
	var o journalOptions
	cmd := &cobra.Command{
		Use:   "journal [--lines=N] [--ssh-port=N] [-f|--follow] [--output=STRING] UNIT",
		Short: "Print the journal of a unit in the cluster to stdout",
		Long: `Outputs the journal of a unit by running journalctl on its machine: here
when the unit runs on this machine, otherwise over SSH (--ssh-port, --tunnel).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errorf("One unit file must be provided.")
			}
			if err := sshPortFlag(o.sshPort); err != nil {
				return err
			}
			ctx := cmd.Context()
			u, err := a.placedUnit(ctx, cmd, args[0], "running")
			if err != nil {
				return err
			}
			if isGlobal(u) {
				return errorf("Unable to retrieve journal of global unit %s.", u.Name)
			}
			name := "journalctl"
			jargs := []string{"--unit", u.Name, "--no-pager", "-n", strconv.Itoa(o.lines), "--output", o.output}
			if o.follow {
				jargs = append(jargs, "-f")
			}
			if o.sudo {
				name, jargs = "sudo", append([]string{"journalctl"}, jargs...)
			}
			return a.onMachine(ctx, u.MachineID, o.sshPort, name, jargs...)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.lines, "lines", 10, "Number of recent log lines to return.")
	fs.BoolVarP(&o.follow, "follow", "f", false, "Continuously print new entries as they are appended to the journal.")
	fs.IntVar(&o.sshPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	fs.BoolVar(&o.sudo, "sudo", false, "Execute journal command with sudo")
	fs.StringVar(&o.output, "output", "short", "Output mode. This will be passed unaltered to journalctl on the remote host, and hence supports the same modes as that command.")
	return cmd
}
