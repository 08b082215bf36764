package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
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
					return runDirective(t, env, d)
				})
			})
		}
	})
}

func runDirective(t *testing.T, env map[string]string, d *datadriven.TestData) string {
	switch d.Cmd {
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
