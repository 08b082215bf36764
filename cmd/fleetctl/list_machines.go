package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
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
			l, c, err := a.startList(cmd, o, machineFields)
			if err != nil {
				return err
			}
			ms, err := c.Machines(cmd.Context())
			if err != nil {
				return errorf("Error retrieving list of active machines from fleet API (%v)\nPossible issues: the endpoint is wrong (--endpoint), fleetd is not running, or it cannot reach etcd", err)
			}
			for _, m := range ms {
				if err := l.add(func(f string) (any, string, error) { return machineCell(m, f, o.full) }); err != nil {
					return err
				}
			}
			return l.print(a.stdout, o)
		},
	}
	addListFlags(cmd, &o, "machine,ip,metadata", machineFields, true)
	return cmd
}

// machineCell is one field of a machine's row: its raw value and its text.
func machineCell(m api.Machine, field string, full bool) (any, string, error) {
	switch field {
	case "machine":
		if !full && len(m.ID) > 8 {
			return m.ID, m.ID[:8] + "...", nil
		}
		return m.ID, m.ID, nil
	case "ip":
		return m.PrimaryIP, m.PrimaryIP, nil
	}
	// metadata
	md := map[string]string{}
	maps.Copy(md, m.Metadata)
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(md)) {
		kv = append(kv, k+"="+md[k])
	}
	return md, strings.Join(kv, ","), nil
}
