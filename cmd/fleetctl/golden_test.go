package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// TestGolden runs every script in testdata/ against a fresh three-machine
// cluster, once per driver: both drivers must print the same, byte for byte.
// Regenerate with: go test ./cmd/fleetctl -run TestGolden -rewrite
//
// Directives:
//
//	file name=<path>        writes the input as a file in the working directory
//	fleetctl [local=<i>]    runs the input as one fleetctl command line, as on
//	                        machine i (0-2; default: a machine outside the cluster);
//	                        prints stdout, then stderr and the exit code
//	chmod name=<path> mode=<octal>
//	wait-state unit=<name> state=<state>   waits for a unit's current state
//	settle                  waits until every unit is where its desired state says (see settled)
func TestGolden(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		path, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, driver := range []string{"api", "etcd"} {
			t.Run(driver, func(t *testing.T) {
				cl := startCluster(t)
				t.Chdir(t.TempDir())
				env := cl.driverEnv(driver)
				datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
					return runDirective(t, cl, env, d)
				})
			})
		}
	})
}

func runDirective(t *testing.T, cl *cluster, env map[string]string, d *datadriven.TestData) string {
	switch d.Cmd {
	case "wait-state":
		var unit, state string
		d.ScanArgs(t, "unit", &unit)
		d.ScanArgs(t, "state", &state)
		cl.waitFor(t, unit+" "+state, func(c fleetclient.Client) bool {
			u, err := c.Unit(context.Background(), unit)
			return err == nil && u.CurrentState == state
		})
		return ""
	case "settle":
		cl.waitFor(t, "every unit settled", settled)
		return ""
	case "file":
		var name string
		d.ScanArgs(t, "name", &name)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(d.Input), 0o644); err != nil {
			t.Fatal(err)
		}
		return ""
	case "chmod":
		var name, mode string
		d.ScanArgs(t, "name", &name)
		d.ScanArgs(t, "mode", &mode)
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, os.FileMode(m)); err != nil {
			t.Fatal(err)
		}
		return ""
	case "fleetctl":
		local := "ffffffffffffffffffffffffffffffff"
		if d.HasArg("local") {
			var i int
			d.ScanArgs(t, "local", &i)
			local = testMachines[i].id
		}
		var out strings.Builder
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			r := fleetctl(t, env, local, strings.Fields(line)...)
			out.WriteString(r.stdout)
			if r.stderr != "" {
				out.WriteString("stderr:\n" + r.stderr)
			}
			fmt.Fprintf(&out, "exit %d\n", r.code)
		}
		return out.String()
	}
	t.Fatalf("unknown directive %q", d.Cmd)
	return ""
}

// settled reports whether every unit is where its desired state says: a
// non-global unit in that current state, a global one reported by every
// machine (or by none when inactive), and systemd on each machine reporting
// it active when launched, inactive when loaded.
func settled(c fleetclient.Client) bool {
	ctx := context.Background()
	units, err := c.Units(ctx)
	if err != nil {
		return false
	}
	sts, err := c.UnitStates(ctx)
	if err != nil {
		return false
	}
	desired := map[string]string{}
	for _, u := range units {
		desired[u.Name] = u.DesiredState
	}
	count := map[string]int{}
	for _, s := range sts {
		switch desired[s.Name] {
		case "launched":
			if s.SystemdActiveState != "active" {
				return false
			}
		case "loaded":
			if s.SystemdActiveState != "inactive" {
				return false
			}
		}
		count[s.Name]++
	}
	for _, u := range units {
		switch {
		case !isGlobal(u):
			if u.CurrentState != u.DesiredState {
				return false
			}
		case u.DesiredState == "inactive":
			if count[u.Name] != 0 {
				return false
			}
		case count[u.Name] != len(testMachines):
			return false
		}
	}
	return true
}
