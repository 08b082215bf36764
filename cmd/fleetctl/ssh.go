package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fleet-rebuild/fleet/internal/fleetclient"
	"github.com/fleet-rebuild/fleet/internal/fleetssh"
)

// sshOptions are ssh's flags.
type sshOptions struct {
	machine, unit bool
	forwardAgent  bool
	port          int
}

func (a *app) newSSHCmd() *cobra.Command {
	var o sshOptions
	cmd := &cobra.Command{
		Use:   "ssh [-A|--forward-agent] [--ssh-port=N] [-m|--machine|-u|--unit] {MACHINE|UNIT} [--] [COMMAND...]",
		Short: "Open interactive shell on a machine in the cluster",
		Long: `Open an interactive shell on a machine in the cluster, or run a command there
(its exit status is fleetctl's). The machine is named by a unique prefix of its
ID, or by a unit scheduled to it; --machine and --unit say which when both
would match.

Open a shell on the machine of a unit:
	fleetctl ssh hello.service

Run a command on a machine:
	fleetctl ssh 113f16a7 -- uptime`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.machine && o.unit {
				return errors.New("--machine and --unit cannot be used together")
			}
			if err := sshPortFlag(o.port); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := a.clientFor(ctx, cmd)
			if err != nil {
				return err
			}
			id, err := a.sshTarget(ctx, c, args[0], o)
			if err != nil {
				return err
			}
			addr, err := a.machineAddr(ctx, id, o.port)
			if err != nil {
				return err
			}
			command := strings.Join(args[1:], " ")
			opts := fleetssh.Options{ForwardAgent: o.forwardAgent}
			if command == "" {
				restore, err := a.rawTerminal(&opts)
				if err != nil {
					return err
				}
				defer restore()
			}
			return a.runRemote(ctx, addr, command, opts)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.machine, "machine", "m", false, "Open SSH connection to a specific machine.")
	fs.BoolVarP(&o.unit, "unit", "u", false, "Open SSH connection to machine running provided unit.")
	fs.BoolVarP(&o.forwardAgent, "forward-agent", "A", false, "Forward local ssh-agent to target machine.")
	fs.IntVar(&o.port, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	return cmd
}

// sshTarget finds the machine ID arg names: a unique machine ID prefix, or
// a non-global unit scheduled to a machine.
func (a *app) sshTarget(ctx context.Context, c fleetclient.Client, arg string, o sshOptions) (string, error) {
	var byMachine, byUnit string
	var machineErr, unitErr error
	if !o.unit {
		byMachine, machineErr = a.machineByPrefix(ctx, c, arg)
	}
	if !o.machine {
		byUnit, unitErr = unitMachine(ctx, c, arg)
	}
	switch {
	case o.machine:
		return byMachine, machineErr
	case o.unit:
		return byUnit, unitErr
	case byMachine != "" && byUnit != "":
		return "", fmt.Errorf("ambiguous argument %q: it names a machine and a unit; use --machine or --unit", arg)
	case byMachine != "":
		return byMachine, nil
	case byUnit != "":
		return byUnit, nil
	}
	return "", fmt.Errorf("could not find matching unit or machine %q", arg)
}

// machineByPrefix returns the one machine whose ID starts with prefix.
func (a *app) machineByPrefix(ctx context.Context, c fleetclient.Client, prefix string) (string, error) {
	ms, err := a.machineList(ctx, c)
	if err != nil {
		return "", err
	}
	var found []string
	for _, m := range ms {
		if strings.HasPrefix(m.ID, prefix) {
			found = append(found, m.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no machine ID starts with %q", prefix)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("found more than one machine whose ID starts with %q", prefix)
}

// unitMachine returns the machine a non-global unit is scheduled to.
func unitMachine(ctx context.Context, c fleetclient.Client, arg string) (string, error) {
	name := unitName(arg)
	u, err := c.Unit(ctx, name)
	switch {
	case errors.Is(err, fleetclient.ErrNotFound):
		return "", fmt.Errorf("unit %s does not exist", name)
	case err != nil:
		return "", fmt.Errorf("error retrieving unit %s: %w", name, err)
	case isGlobal(u):
		return "", fmt.Errorf("unit %s is global: name one of its machines instead", name)
	case u.MachineID == "":
		return "", fmt.Errorf("unit %s is not scheduled to a machine", name)
	}
	return u.MachineID, nil
}

// rawTerminal prepares an interactive shell: a remote terminal, and when
// stdin is a local terminal, that terminal in raw mode (keys go to the
// remote side as typed) with its size. restore undoes the raw mode.
func (a *app) rawTerminal(opts *fleetssh.Options) (restore func(), err error) {
	opts.TTY = true
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}, nil
	}
	fd := int(f.Fd())
	if w, h, err := term.GetSize(fd); err == nil {
		opts.Width, opts.Height = w, h
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	return func() { _ = term.Restore(fd, state) }, nil
}
