package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/fleet-rebuild/fleet/api"
)

// The cluster's client actions, one function each, as fleetctl would do them:
// they can become fleetctl calls once it exists. They all talk to one fleetd's
// API.

// newClient connects to a fleetd API endpoint.
func newClient(endpoint string) (*api.Client, error) {
	return api.NewClient(api.ClientConfig{Endpoint: endpoint, Timeout: 10 * time.Second})
}

// listMachines prints the live machines as fleetctl list-machines does.
func listMachines(ctx context.Context, c *api.Client, w io.Writer) error {
	ms, err := c.Machines(ctx)
	if err != nil {
		return fmt.Errorf("list-machines: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
	fmt.Fprintln(tw, "MACHINE\tIP\tMETADATA")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", shortID(m.ID), orDash(m.PrimaryIP), metadata(m.Metadata))
	}
	return tw.Flush()
}

// listUnits prints the published unit states as fleetctl list-units does.
func listUnits(ctx context.Context, c *api.Client, w io.Writer) error {
	states, err := c.UnitStates(ctx, api.StateFilter{})
	if err != nil {
		return fmt.Errorf("list-units: %w", err)
	}
	ms, err := c.Machines(ctx)
	if err != nil {
		return fmt.Errorf("list-units: %w", err)
	}
	ips := map[string]string{}
	for _, m := range ms {
		ips[m.ID] = m.PrimaryIP
	}
	tw := tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
	fmt.Fprintln(tw, "UNIT\tMACHINE\tACTIVE\tSUB")
	for _, s := range states {
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\n", s.Name, shortID(s.MachineID), orDash(ips[s.MachineID]), orDash(s.SystemdActiveState), orDash(s.SystemdSubState))
	}
	return tw.Flush()
}

// startUnit submits a unit and sets it launched, as fleetctl start does.
func startUnit(ctx context.Context, c *api.Client, u exampleUnit) error {
	if err := c.CreateUnit(ctx, api.Unit{Name: u.Name, Options: u.Options, DesiredState: "launched"}); err != nil {
		return fmt.Errorf("start %s: %w", u.Name, err)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "..."
	}
	return orDash(id)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func metadata(md map[string]string) string {
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

// exampleUnit is one unit to start: a unit file, or an instance of a template.
type exampleUnit struct {
	Name    string
	Options []api.UnitOption
}

// fleetOption returns the value of an [X-Fleet] option, or "".
func (u exampleUnit) fleetOption(name string) string {
	for _, o := range u.Options {
		if o.Section == "X-Fleet" && o.Name == name {
			return o.Value
		}
	}
	return ""
}

// global reports whether the unit runs on every machine.
func (u exampleUnit) global() bool { return u.fleetOption("Global") == "true" }

// readExamples reads the unit files in dir, sorted by name; a template
// (name@.service) gives instances name@1 ... name@instances.
func readExamples(dir string, instances int) ([]exampleUnit, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.service"))
	if err != nil {
		return nil, fmt.Errorf("examples: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("examples: no *.service files in %s", dir)
	}
	sort.Strings(paths)
	var out []exampleUnit
	for _, p := range paths {
		opts, err := readUnitFile(p)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(p)
		prefix, ok := strings.CutSuffix(name, "@.service")
		if !ok {
			out = append(out, exampleUnit{Name: name, Options: opts})
			continue
		}
		for i := 1; i <= instances; i++ {
			out = append(out, exampleUnit{Name: prefix + "@" + strconv.Itoa(i) + ".service", Options: opts})
		}
	}
	return out, nil
}

// readUnitFile parses a unit file into API options.
func readUnitFile(path string) ([]api.UnitOption, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("examples: %w", err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		return nil, fmt.Errorf("examples: %s: %w", path, err)
	}
	out := make([]api.UnitOption, len(opts))
	for i, o := range opts {
		out[i] = api.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return out, nil
}

// notRunning lists the units that do not run as they should yet: a unit is
// running when it is launched and its machine reports it active; a global unit
// when every machine reports it active. With one machine, units with
// Conflicts are left out: all but one of a conflicting group must wait.
func notRunning(ctx context.Context, c *api.Client, units []exampleUnit, machines int) ([]string, error) {
	states, err := c.UnitStates(ctx, api.StateFilter{})
	if err != nil {
		return nil, err
	}
	active := map[string]int{} // unit name -> machines reporting it active
	activeOn := map[[2]string]bool{}
	for _, s := range states {
		if s.SystemdActiveState == "active" {
			active[s.Name]++
			activeOn[[2]string{s.Name, s.MachineID}] = true
		}
	}
	var missing []string
	for _, u := range units {
		switch {
		case machines < 2 && u.fleetOption("Conflicts") != "":
		case u.global():
			if active[u.Name] < machines {
				missing = append(missing, u.Name)
			}
		default:
			got, err := c.Unit(ctx, u.Name)
			if err != nil {
				return nil, err
			}
			if got.CurrentState != "launched" || !activeOn[[2]string{u.Name, got.MachineID}] {
				missing = append(missing, u.Name)
			}
		}
	}
	return missing, nil
}
