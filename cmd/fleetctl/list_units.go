package main

import (
	"github.com/spf13/cobra"
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
			fields, err := parseFields(o.fields, unitStateFields)
			if err != nil {
				return err
			}
			if err := checkOutput(o); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := a.clientFor(ctx, cmd)
			if err != nil {
				return err
			}
			states, err := c.UnitStates(ctx)
			if err != nil {
				return errorf("Error retrieving list of units from repository: %v", err)
			}
			var items []map[string]any
			var rows [][]string
			for _, s := range states {
				item := map[string]any{}
				var row []string
				for _, f := range fields {
					var raw, shown string
					switch f {
					case "unit":
						raw = s.Name
					case "machine":
						raw = s.MachineID
						if raw != "" {
							if shown, err = a.machineLegend(ctx, c, raw, o.full); err != nil {
								return err
							}
						}
					case "active":
						raw = s.SystemdActiveState
					case "sub":
						raw = s.SystemdSubState
					case "load":
						raw = s.SystemdLoadState
					case "hash":
						raw = s.Hash
						if !o.full && len(raw) > 7 {
							shown = raw[:7]
						}
					}
					if shown == "" {
						shown = raw
					}
					item[f] = raw
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
	addListFlags(cmd, &o, "unit,machine,active,sub", unitStateFields, true)
	return cmd
}
