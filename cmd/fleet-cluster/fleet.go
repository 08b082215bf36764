package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/fleet-rebuild/fleet/api"
)

// newClient connects to a fleetd API endpoint, for the tool's own checks.
func newClient(endpoint string) (*api.Client, error) {
	return api.NewClient(api.ClientConfig{Endpoint: endpoint, Timeout: 10 * time.Second})
}

// fleetctl runs the fleetctl binary against endpoint, its output to out.
func fleetctl(ctx context.Context, bin, endpoint string, out io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoint", endpoint}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fleetctl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// exampleUnit is one unit to start: a unit file, or an instance of a template.
type exampleUnit struct {
	Name    string
	Path    string // the file for fleetctl: the unit's own, or its instance's name next to the template
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
			out = append(out, exampleUnit{Name: name, Path: p, Options: opts})
			continue
		}
		for i := 1; i <= instances; i++ {
			inst := prefix + "@" + strconv.Itoa(i) + ".service"
			out = append(out, exampleUnit{Name: inst, Path: filepath.Join(dir, inst), Options: opts})
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
