package sim

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/fleet-rebuild/fleet/core"
)

// ListUnits renders what `fleetctl list-units` shows: each unit with the machine
// it runs on and the state that machine's agent published.
func (c *Cluster) ListUnits() (string, error) {
	reg := c.backend.Registry
	placements, err := reg.Placements(c.ctx)
	if err != nil {
		return "", err
	}
	states, err := reg.UnitStates(c.ctx)
	if err != nil {
		return "", err
	}
	type row struct{ unit, machine, active, sub string }
	var rows []row
	published := map[[2]string]core.UnitState{}
	for _, s := range states {
		published[[2]string{s.Unit, s.Machine}] = s
	}
	seen := map[[2]string]bool{}
	for _, p := range placements {
		k := [2]string{p.Unit, p.Machine}
		seen[k] = true
		s, ok := published[k]
		if !ok {
			rows = append(rows, row{p.Unit, p.Machine, "-", "-"})
			continue
		}
		rows = append(rows, row{p.Unit, p.Machine, s.ActiveState, s.SubState})
	}
	for _, s := range states {
		if !seen[[2]string{s.Unit, s.Machine}] {
			rows = append(rows, row{s.Unit, s.Machine, s.ActiveState, s.SubState})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].unit != rows[j].unit {
			return rows[i].unit < rows[j].unit
		}
		return rows[i].machine < rows[j].machine
	})
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "UNIT\tMACHINE\tACTIVE\tSUB")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.unit, r.machine, r.active, r.sub)
	}
	w.Flush()
	return b.String(), nil
}

// ListMachines renders the machines: presence, metadata and the number of units
// placed on each.
func (c *Cluster) ListMachines() (string, error) {
	reg := c.backend.Registry
	ms, err := reg.Machines(c.ctx)
	if err != nil {
		return "", err
	}
	placements, err := reg.Placements(c.ctx)
	if err != nil {
		return "", err
	}
	load := map[string]int{}
	for _, p := range placements {
		load[p.Machine]++
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "MACHINE\tMETADATA\tUNITS")
	for _, m := range ms {
		fmt.Fprintf(w, "%s\t%s\t%d\n", m.ID, metadataString(m.Metadata), load[m.ID])
	}
	w.Flush()
	return b.String(), nil
}

func metadataString(md map[string]string) string {
	if len(md) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + md[k]
	}
	return strings.Join(parts, ",")
}

// Load returns the number of units that run on each live machine (placed units
// and eligible global units), by machine ID.
func (c *Cluster) Load() (map[string]int, error) {
	s := c.snapshotForCheck()
	if s == nil {
		return nil, fmt.Errorf("sim: registry unreadable")
	}
	placed := map[string][]*core.SchedUnit{}
	for _, p := range s.placements {
		if r := c.units[p.Unit]; r != nil {
			placed[p.Machine] = append(placed[p.Machine], &r.SchedUnit)
		}
	}
	out := make(map[string]int, len(s.ids))
	for id, units := range c.machineUnits(s, placed) {
		out[id] = len(units)
	}
	return out, nil
}
