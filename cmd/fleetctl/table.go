package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// listOptions are the output flags shared by the list commands.
type listOptions struct {
	fields   string
	full     bool
	noLegend bool
	output   string
}

// addListFlags registers --fields, --full (with -l when short), --no-legend
// and --output.
func addListFlags(cmd *cobra.Command, o *listOptions, defFields string, valid []string, short bool) {
	fs := cmd.Flags()
	fs.StringVar(&o.fields, "fields", defFields, fmt.Sprintf("Columns to print for each unit. Valid fields are %q", strings.Join(valid, ",")))
	if short {
		fs.BoolVarP(&o.full, "full", "l", false, "Do not ellipsize fields on output")
	} else {
		fs.BoolVar(&o.full, "full", false, "Do not ellipsize fields on output")
	}
	fs.BoolVar(&o.noLegend, "no-legend", false, "Do not print a legend (column headers)")
	fs.StringVarP(&o.output, "output", "o", "table", "Output format: table (fleet's) or json")
}

// parseFields checks --fields against the valid keys.
func parseFields(spec string, valid []string) ([]string, error) {
	if spec == "" {
		return nil, fmt.Errorf("Must define output format")
	}
	fields := strings.Split(spec, ",")
	for _, f := range fields {
		if !slices.Contains(valid, f) {
			return nil, fmt.Errorf("Invalid key in output format: %q", f)
		}
	}
	return fields, nil
}

// checkOutput checks --output.
func checkOutput(o listOptions) error {
	if o.output != "table" && o.output != "json" {
		return fmt.Errorf("invalid --output %q: want table or json", o.output)
	}
	return nil
}

// printTable writes rows as fleet does: tab-aligned (tabwriter padding with
// tabs), '-' for empty values, a header of the uppercased field names unless
// noLegend.
func printTable(w io.Writer, fields []string, rows [][]string, noLegend bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
	if !noLegend {
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(fields, "\t")))
	}
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			if c == "" {
				c = "-"
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// printJSON writes items as an indented JSON array (an empty listing is []).
func printJSON(w io.Writer, items []map[string]any) error {
	if items == nil {
		items = []map[string]any{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(items)
}

// machineLegend is fleet's machine column: the short ID and "..." (the full
// ID with full), then "/<ip>" when the machine is live with an IP. The
// machine list is read once per invocation.
func (a *app) machineLegend(ctx context.Context, c fleetclient.Client, id string, full bool) (string, error) {
	ms, err := a.machineList(ctx, c)
	if err != nil {
		return "", err
	}
	legend := id
	if !full && len(id) > 8 {
		legend = id[:8] + "..."
	}
	for _, m := range ms {
		if m.ID == id && m.PrimaryIP != "" {
			legend += "/" + m.PrimaryIP
		}
	}
	return legend, nil
}

// machineList reads the machines once per invocation.
func (a *app) machineList(ctx context.Context, c fleetclient.Client) ([]api.Machine, error) {
	if a.machines == nil {
		ms, err := c.Machines(ctx)
		if err != nil {
			return nil, fmt.Errorf("error retrieving list of active machines: %w", err)
		}
		a.machines = append([]api.Machine{}, ms...)
	}
	return a.machines, nil
}

// listing collects the rows of a list command in both forms: as shown in a
// table and as raw values for JSON.
type listing struct {
	fields []string
	items  []map[string]any
	rows   [][]string
}

// add appends one row; cell gives each field's raw value and its table text.
func (l *listing) add(cell func(field string) (raw any, shown string, err error)) error {
	item := map[string]any{}
	row := make([]string, 0, len(l.fields))
	for _, f := range l.fields {
		raw, shown, err := cell(f)
		if err != nil {
			return err
		}
		item[f] = raw
		row = append(row, shown)
	}
	l.items = append(l.items, item)
	l.rows = append(l.rows, row)
	return nil
}

// print writes the listing as --output says.
func (l *listing) print(w io.Writer, o listOptions) error {
	if o.output == "json" {
		return printJSON(w, l.items)
	}
	return printTable(w, l.fields, l.rows, o.noLegend)
}

// startList checks a list command's output flags and opens the client.
func (a *app) startList(cmd *cobra.Command, o listOptions, valid []string) (*listing, fleetclient.Client, error) {
	fields, err := parseFields(o.fields, valid)
	if err != nil {
		return nil, nil, err
	}
	if err := checkOutput(o); err != nil {
		return nil, nil, err
	}
	c, err := a.clientFor(cmd.Context(), cmd)
	if err != nil {
		return nil, nil, err
	}
	return &listing{fields: fields}, c, nil
}
