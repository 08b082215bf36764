package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

const (
	// machines is the size of the test cluster.
	machines = 3
	// agentTTL is the cluster's agent_ttl: short, so that a frozen machine is
	// declared gone quickly, and long enough for a loaded host.
	agentTTL = 5 * time.Second
	// systemdBin is the systemd binary the machines run.
	systemdBin = "/lib/systemd/systemd"
	// beaconUnit is a global unit started with the cluster; every start of it
	// is logged in the cluster's beacon start log.
	beaconUnit = "chaos-beacon.service"
)

// The cluster every test shares, set up by TestMain. When it cannot run,
// skipReason says why; when it should have run but did not, setupErr.
var (
	skipReason string
	setupErr   error
	cl         *cluster
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	skipReason = cannotRun()
	if skipReason != "" {
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "fleet-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	c, err := setup(tmp)
	cl, setupErr = c, err
	code := m.Run()
	if err := downThree(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: three-member etcd cluster down:", err)
		code = 1
	}
	if err := downEmbedded(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: embedded-etcd cluster down:", err)
		code = 1
	}
	if c != nil {
		if err := c.down(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: cluster down:", err)
			code = 1
		}
	}
	return code
}

// cannotRun says why the cluster cannot run here, or "".
func cannotRun() string {
	if os.Geteuid() != 0 {
		return "not root: the machines need mount namespaces and cgroups"
	}
	if _, err := os.Stat(systemdBin); err != nil {
		return "no systemd binary at " + systemdBin
	}
	for _, tool := range []string{"systemctl", "unshare", "nsenter", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not found in PATH"
		}
	}
	return ""
}

// setup builds the binaries into tmp and brings up the shared cluster.
func setup(tmp string) (*cluster, error) {
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/fleet-rebuild/fleet/cmd/fleetd",
		"github.com/fleet-rebuild/fleet/cmd/fleetctl", "github.com/fleet-rebuild/fleet/cmd/fleet-cluster")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return startCluster(bin, filepath.Join(tmp, "c"))
}

// startCluster brings up a cluster in dir with the binaries in bin: three
// machines on a separate one-member etcd, so that any fleetd can be killed or
// frozen without taking etcd with it; extra are more flags of
// fleet-cluster up.
func startCluster(bin, dir string, extra ...string) (*cluster, error) {
	c := &cluster{dir: dir, beaconLog: dir + "-beacon.starts",
		fleetd: filepath.Join(bin, "fleetd"), fleetctl: filepath.Join(bin, "fleetctl"), tool: filepath.Join(bin, "fleet-cluster")}
	boot := dir + "-boot"
	if err := os.MkdirAll(boot, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(boot, beaconUnit), []byte(loggedService(c.beaconLog, "Global=true")), 0o644); err != nil {
		return nil, err
	}
	// The tool picks free loopback ports and binds them a moment later; a
	// port taken in between by another program fails the start, which then
	// cleans up after itself and is tried again.
	for attempt := 1; ; attempt++ {
		out, err := c.up(boot, extra)
		_, serr := os.Stat(filepath.Join(c.dir, clusterstate.File))
		switch {
		case err == nil && serr == nil:
			return c, c.load()
		case serr == nil:
			return c, fmt.Errorf("fleet-cluster up: %w\n%s", err, out)
		case err != nil && attempt < 3 && strings.Contains(out, "address already in use"):
			fmt.Fprintf(os.Stderr, "chaos: fleet-cluster up lost a port race (attempt %d), trying again\n", attempt)
		default:
			return nil, fmt.Errorf("fleet-cluster up: %w\n%s", errors.Join(err, serr), out)
		}
	}
}

// up runs fleet-cluster up and returns its output.
func (c *cluster) up(boot string, extra []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	up := exec.CommandContext(ctx, c.tool, "up", "-dir", c.dir, "-machines", fmt.Sprint(machines), "-etcd", "1",
		"-fleetd", c.fleetd, "-fleetctl", c.fleetctl, "-examples", boot, "-unit-manager", "systemd",
		"-systemd", systemdBin, "-agent-ttl", agentTTL.String(), "-wait", "60s")
	up.Args = append(up.Args, extra...)
	out, err := up.CombinedOutput()
	return string(out), err
}

// needCluster skips the test when the cluster cannot run here (fails instead
// under CI=true), fails it when the cluster did not come up, and makes sure
// every machine runs and is thawed (an earlier test may have left one dead).
func needCluster(t *testing.T) *cluster {
	t.Helper()
	if skipReason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the chaos cluster cannot run: %s", skipReason)
		}
		t.Skipf("chaos cluster cannot run: %s", skipReason)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	if err := cl.reviveAll(); err != nil {
		t.Fatal(err)
	}
	return cl
}

// fullSetEnv names the knob that runs the whole set (make chaos), beyond the
// quick set CI runs.
const fullSetEnv = "CHAOS_FULL"

// onlyInFullSet skips a test outside the whole set, even under CI=true, and
// says why it is not in the quick set.
func onlyInFullSet(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(fullSetEnv) != "1" {
		t.Skipf("not in the quick set (%s); run it with %s=1 (make chaos)", why, fullSetEnv)
	}
}
