package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

var unitStateFields = []string{"active", "hash", "load", "machine", "sub", "unit"}

func (a *app) newListUnitsCmd() *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list-units [--no-legend] [-l|--full] [--fields] [--output json]",
		Short: "List the current state of units in the cluster",
		Long: `Lists the state of all units in the cluster loaded onto a machine.

For easily parsable output, you can remove the column headers:
	fleetctl list-units --no-legend

Output the list without truncation:
	fleetctl list-units --full`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, c, err := a.startList(cmd, o, unitStateFields)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			states, err := c.UnitStates(ctx)
			if err != nil {
				return errorf("Error retrieving list of units from repository: %v", err)
			}
			for _, s := range states {
				if err := l.add(func(f string) (any, string, error) { return a.unitStateCell(ctx, c, s, f, o.full) }); err != nil {
					return err
				}
			}
			return l.print(a.stdout, o)
		},
	}
	addListFlags(cmd, &o, "unit,machine,active,sub", unitStateFields, true)
	return cmd
}

// unitStateCell is one field of a unit state's row: its raw value and its
// text.
func (a *app) unitStateCell(ctx context.Context, c fleetclient.Client, s api.UnitState, field string, full bool) (any, string, error) {
	switch field {
	case "unit":
		return s.Name, s.Name, nil
	case "active":
		return s.SystemdActiveState, s.SystemdActiveState, nil
	case "sub":
		return s.SystemdSubState, s.SystemdSubState, nil
	case "load":
		return s.SystemdLoadState, s.SystemdLoadState, nil
	case "hash":
		if !full && len(s.Hash) > 7 {
			return s.Hash, s.Hash[:7], nil
		}
		return s.Hash, s.Hash, nil
	}
	// machine
	if s.MachineID == "" {
		return "", "", nil
	}
	legend, err := a.machineLegend(ctx, c, s.MachineID, full)
	return s.MachineID, legend, err
}
