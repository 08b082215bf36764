package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

func (a *app) newStartCmd() *cobra.Command {
	var wo waitOptions
	var replace, sign bool
	cmd := &cobra.Command{
		Use:   "start [--no-block|--block-attempts=N] UNIT...",
		Short: "Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary.",
		Long: `Start one or many units on the cluster. Select units to start by glob matching
for units in the current working directory or matching names of previously
submitted units.

For units which are not global, start operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to a launched state, and then that systemd reports them active.
This behaviour can be configured with the respective --block-attempts and
--no-block options. Start operations on global units are always non-blocking.

Start a single unit:
	fleetctl start foo.service

Start an entire directory of units with glob matching, without waiting:
	fleetctl start --no-block myservice/*`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if sign {
				return errSigned
			}
			if len(args) == 0 {
				return a.noUnits()
			}
			changed, err := a.createAndSet(cmd, args, replace, wo, core.Launched, "start",
				string(core.Inactive), string(core.Loaded), string(core.Launched))
			if err != nil || wo.noBlock {
				return err
			}
			return a.checkActive(cmd.Context(), a.client, changed)
		},
	}
	addWaitFlags(cmd, &wo)
	cmd.Flags().BoolVar(&replace, "replace", false, "Replace the already started units in the cluster with new versions.")
	cmd.Flags().BoolVar(&sign, "sign", false, "DEPRECATED - this option cannot be used")
	_ = cmd.Flags().MarkHidden("sign")
	return cmd
}

// checkActive is start's last step: within one polling window, systemd on
// each started non-global unit's machine must report it loaded and active.
func (a *app) checkActive(ctx context.Context, c fleetclient.Client, units []api.Unit) error {
	var names []string
	for _, u := range units {
		if !isGlobal(u) {
			names = append(names, u.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	deadline := time.Now().Add(a.attemptTime)
	for {
		all, err := findUnits(ctx, c, names)
		if err != nil {
			return err
		}
		states, err := c.UnitStates(ctx)
		if err != nil {
			return fmt.Errorf("error retrieving unit states: %w", err)
		}
		var inactive []string
		for _, u := range all {
			if !activeOn(states, u.Name, u.MachineID) {
				inactive = append(inactive, u.Name)
			}
		}
		if len(inactive) == 0 {
			return nil
		}
		if a.expired(deadline) {
			return fmt.Errorf("Failed to find an active unit %v within %v: systemd does not report it loaded and active", inactive, a.attemptTime)
		}
		if err := a.pause(ctx); err != nil {
			return err
		}
	}
}

// activeOn reports whether machine publishes unit as loaded and active.
func activeOn(states []api.UnitState, unit, machine string) bool {
	for _, s := range states {
		if s.Name == unit && s.MachineID == machine {
			return s.SystemdLoadState == "loaded" && s.SystemdActiveState == "active"
		}
	}
	return false
}
