package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

var machineFields = []string{"machine", "ip", "metadata"}

func (a *app) newListMachinesCmd() *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list-machines [-l|--full] [--no-legend] [--fields] [--output json]",
		Short: "Enumerate the current hosts in the cluster",
		Long: `Lists all active machines within the cluster. Previously active machines will not appear in this list.

For easily parsable output, you can remove the column headers:
	fleetctl list-machines --no-legend`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fields, err := parseFields(o.fields, machineFields)
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
			ms, err := c.Machines(ctx)
			if err != nil {
				return errorf("Error retrieving list of active machines from fleet API (%v)\nPossible issues: the endpoint is wrong (--endpoint), fleetd is not running, or it cannot reach etcd", err)
			}
			if o.output == "json" {
				var items []map[string]any
				for _, m := range ms {
					item := map[string]any{}
					for _, f := range fields {
						switch f {
						case "machine":
							item[f] = m.ID
						case "ip":
							item[f] = m.PrimaryIP
						case "metadata":
							md := map[string]string{}
							maps.Copy(md, m.Metadata)
							item[f] = md
						}
					}
					items = append(items, item)
				}
				return printJSON(a.stdout, items)
			}
			var rows [][]string
			for _, m := range ms {
				var row []string
				for _, f := range fields {
					switch f {
					case "machine":
						id := m.ID
						if !o.full && len(id) > 8 {
							id = id[:8] + "..."
						}
						row = append(row, id)
					case "ip":
						row = append(row, m.PrimaryIP)
					case "metadata":
						var kv []string
						for _, k := range slices.Sorted(maps.Keys(m.Metadata)) {
							kv = append(kv, k+"="+m.Metadata[k])
						}
						row = append(row, strings.Join(kv, ","))
					}
				}
				rows = append(rows, row)
			}
			return printTable(a.stdout, fields, rows, o.noLegend)
		},
	}
	addListFlags(cmd, &o, "machine,ip,metadata", machineFields, true)
	return cmd
}
