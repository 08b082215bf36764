package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

var unitFileFields = []string{"desc", "dstate", "global", "hash", "state", "target", "tmachine", "unit"}

func (a *app) newListUnitFilesCmd() *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list-unit-files [--fields] [--full] [--no-legend] [--output json]",
		Short: "List the units that exist in the cluster.",
		Long: `Lists all unit files that exist in the cluster (whether or not they are loaded onto a machine).

The STATE column is the cluster-level current state (inactive, loaded or launched; - for global units),
DSTATE the desired state, TARGET the machine the unit is scheduled to (global for global units).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, c, err := a.startList(cmd, o, unitFileFields)
			if err != nil {
				return err
			}
			if slices.Contains(l.fields, "tmachine") {
				fmt.Fprintln(a.stderr, "WARNING: The \"tmachine\" field is deprecated. Use \"target\" instead")
			}
			ctx := cmd.Context()
			units, err := c.Units(ctx)
			if err != nil {
				return errorf("Error retrieving list of units from repository: %v", err)
			}
			for _, u := range units {
				uf := core.NewUnitFile(coreOptions(u.Options))
				err := l.add(func(f string) (any, string, error) { return a.unitFileCell(ctx, c, u, uf, f, o.full) })
				if err != nil {
					return err
				}
			}
			return l.print(a.stdout, o)
		},
	}
	addListFlags(cmd, &o, "unit,hash,dstate,state,target", unitFileFields, false)
	return cmd
}

// unitFileCell is one field of a unit's row: its raw value and its text.
func (a *app) unitFileCell(ctx context.Context, c fleetclient.Client, u api.Unit, uf *core.UnitFile, field string, full bool) (any, string, error) {
	switch field {
	case "unit":
		return u.Name, u.Name, nil
	case "hash":
		if full {
			return string(uf.Hash()), string(uf.Hash()), nil
		}
		return string(uf.Hash()), uf.Hash().Short(), nil
	case "dstate":
		return u.DesiredState, u.DesiredState, nil
	case "state":
		return u.CurrentState, u.CurrentState, nil
	case "global":
		g := isGlobal(u)
		return g, strconv.FormatBool(g), nil
	case "desc":
		d := description(uf)
		return d, d, nil
	}
	// target, tmachine
	switch {
	case isGlobal(u):
		return "global", "global", nil
	case u.MachineID == "":
		return "", "", nil
	}
	legend, err := a.machineLegend(ctx, c, u.MachineID, full)
	return u.MachineID, legend, err
}

// description is the first [Unit] Description, or "".
func description(uf *core.UnitFile) string {
	for _, o := range uf.Section("Unit") {
		if o.Name == "Description" {
			return o.Value
		}
	}
	return ""
}
