package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/core"
)

func (a *app) newRestartCmd() *cobra.Command {
	var wo waitOptions
	var sshPort int
	cmd := &cobra.Command{
		Use:   "restart [--block-attempts=N] [--ssh-port=N] UNIT...",
		Short: "Instruct systemd to restart one or more units in the cluster.",
		Long: `Restart one or more units: a launched unit is stopped (waiting until it is
loaded) and started again; a loaded unit is started. Units missing from the
cluster are submitted first. Inactive units cannot be restarted.

A global unit is restarted with systemctl restart on every machine that
reports it (here, or over SSH).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return a.noUnits()
			}
			if err := checkAttempts(cmd, wo); err != nil {
				return err
			}
			if err := sshPortFlag(sshPort); err != nil {
				return err
			}
			names, err := unitNames(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := a.clientFor(ctx, cmd)
			if err != nil {
				return err
			}
			plan, err := a.planCreates(ctx, c, args, false)
			if err != nil {
				return err
			}
			if err := a.applyCreates(ctx, c, plan, wo.attempts); err != nil {
				return err
			}
			units, err := findUnits(ctx, c, names)
			if err != nil {
				return err
			}
			var todo, globals []api.Unit
			for _, u := range units {
				switch {
				case isGlobal(u):
					globals = append(globals, u)
					continue
				case u.CurrentState == string(core.Inactive):
					return errorf("Unable to restart unit %s in state %s", u.Name, u.CurrentState)
				}
				todo = append(todo, u)
			}
			for _, u := range todo {
				if u.CurrentState == string(core.Launched) {
					if err := a.setAndWait(cmd, u.Name, core.Loaded, wo.attempts); err != nil {
						return err
					}
				}
				if err := a.setAndWait(cmd, u.Name, core.Launched, wo.attempts); err != nil {
					return err
				}
			}
			if err := a.checkActive(ctx, c, todo); err != nil {
				return err
			}
			return a.restartGlobal(ctx, globals, sshPort)
		},
	}
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	cmd.Flags().IntVar(&wo.attempts, "block-attempts", 0, "Wait until the units are stopped and started, polling up to this many times (about 2 s each) per step before giving up. 0 waits forever.")
	return cmd
}

// setAndWait sets one unit's desired state and waits for it.
func (a *app) setAndWait(cmd *cobra.Command, name string, st core.JobState, attempts int) error {
	ctx := cmd.Context()
	if err := a.client.SetTargetState(ctx, name, string(st)); err != nil {
		return fmt.Errorf("error setting target state of unit %s: %w", name, err)
	}
	return a.waitStates(ctx, a.client, []string{name}, string(st), attempts, true)
}

// restartGlobal runs systemctl restart for each global unit on every machine
// that reports it.
func (a *app) restartGlobal(ctx context.Context, units []api.Unit, sshPort int) error {
	for _, u := range units {
		machines, err := a.unitMachines(ctx, u)
		if err != nil {
			return err
		}
		if len(machines) == 0 {
			return errorf("Unable to restart global unit %s: no machine runs it", u.Name)
		}
		for _, m := range machines {
			if err := a.onMachine(ctx, m, sshPort, "systemctl", "restart", u.Name); err != nil {
				return err
			}
		}
	}
	return nil
}
