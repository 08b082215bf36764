package main

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/core"
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
			fields, err := parseFields(o.fields, unitFileFields)
			if err != nil {
				return err
			}
			if err := checkOutput(o); err != nil {
				return err
			}
			if slices.Contains(fields, "tmachine") {
				fmt.Fprintln(a.stderr, "WARNING: The \"tmachine\" field is deprecated. Use \"target\" instead")
			}
			ctx := cmd.Context()
			c, err := a.clientFor(ctx, cmd)
			if err != nil {
				return err
			}
			units, err := c.Units(ctx)
			if err != nil {
				return errorf("Error retrieving list of units from repository: %v", err)
			}
			var items []map[string]any
			var rows [][]string
			for _, u := range units {
				uf := core.NewUnitFile(coreOptions(u.Options))
				global := isGlobal(u)
				item := map[string]any{}
				var row []string
				for _, f := range fields {
					var val any
					var shown string
					switch f {
					case "unit":
						val, shown = u.Name, u.Name
					case "hash":
						h := string(uf.Hash())
						val, shown = h, h
						if !o.full {
							shown = uf.Hash().Short()
						}
					case "dstate":
						val, shown = u.DesiredState, u.DesiredState
					case "state":
						val, shown = u.CurrentState, u.CurrentState
					case "global":
						val, shown = global, strconv.FormatBool(global)
					case "desc":
						d := description(uf)
						val, shown = d, d
					case "target", "tmachine":
						val = u.MachineID
						switch {
						case global:
							val, shown = "global", "global"
						case u.MachineID != "":
							if shown, err = a.machineLegend(ctx, c, u.MachineID, o.full); err != nil {
								return err
							}
						}
					}
					item[f] = val
					row = append(row, shown)
				}
				items = append(items, item)
				rows = append(rows, row)
			}
			if o.output == "json" {
				return printJSON(a.stdout, items)
			}
			return printTable(a.stdout, fields, rows, o.noLegend)
		},
	}
	addListFlags(cmd, &o, "unit,hash,dstate,state,target", unitFileFields, false)
	return cmd
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
