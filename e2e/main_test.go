package e2e

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
	// agentTTL is the cluster's agent_ttl: short, so that failover is quick,
	// and long enough that a loaded host never misses a presence renewal.
	agentTTL = 5 * time.Second
	// systemdBin is the systemd binary the machines run.
	systemdBin = "/lib/systemd/systemd"
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
	tmp, err := os.MkdirTemp("", "fleet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	c, err := setup(tmp)
	cl, setupErr = c, err
	code := m.Run()
	if c != nil {
		if err := c.down(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: cluster down:", err)
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
	b := binaries{fleetd: filepath.Join(bin, "fleetd"), fleetctl: filepath.Join(bin, "fleetctl"), tool: filepath.Join(bin, "fleet-cluster")}
	for out, pkg := range map[string]string{b.fleetd: "../cmd/fleetd", b.fleetctl: "../cmd/fleetctl", b.tool: "../cmd/fleet-cluster"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		if msg, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %w\n%s", pkg, err, msg)
		}
	}
	return startCluster(b, filepath.Join(tmp, "c"), 0)
}

// startCluster brings up a cluster in dir, on etcd embedded in m1's fleetd
// (etcd 0) or on etcd separate members, with the global beaconUnit running.
// A cluster returned with an error is partly up and must still be brought
// down; no cluster is returned when nothing was started.
func startCluster(b binaries, dir string, etcd int) (*cluster, error) {
	c := &cluster{dir: dir, binaries: b}
	boot := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-boot")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(boot, beaconUnit), []byte(beaconFile), 0o644); err != nil {
		return nil, err
	}
	// The tool picks free loopback ports and binds them a moment later; a
	// port taken in between by another program fails the start, which then
	// cleans up after itself and is tried again.
	for attempt := 1; ; attempt++ {
		out, err := c.up(boot, etcd)
		_, serr := os.Stat(filepath.Join(c.dir, clusterstate.File))
		switch {
		case err == nil && serr == nil:
			return c, c.load()
		case serr == nil:
			return c, fmt.Errorf("fleet-cluster up: %w\n%s", err, out)
		case err != nil && attempt < 3 && strings.Contains(out, "address already in use"):
			fmt.Fprintf(os.Stderr, "e2e: fleet-cluster up lost a port race (attempt %d), trying again\n", attempt)
		default:
			return nil, fmt.Errorf("fleet-cluster up: %w\n%s", errors.Join(err, serr), out)
		}
	}
}

// up runs fleet-cluster up for the cluster and returns its output.
func (c *cluster) up(boot string, etcd int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	up := exec.CommandContext(ctx, c.tool, "up", "-dir", c.dir, "-machines", fmt.Sprint(machines), "-etcd", fmt.Sprint(etcd),
		"-fleetd", c.fleetd, "-fleetctl", c.fleetctl, "-examples", boot, "-unit-manager", "systemd",
		"-systemd", systemdBin, "-agent-ttl", agentTTL.String(), "-wait", "60s")
	out, err := up.CombinedOutput()
	return string(out), err
}

// needCluster skips the test when the cluster cannot run here (fails instead
// under CI=true), fails it when the cluster did not come up, and makes sure
// every machine runs (restarting one an earlier test left dead).
func needCluster(t *testing.T) *cluster {
	t.Helper()
	if skipReason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the end-to-end cluster cannot run: %s", skipReason)
		}
		t.Skipf("end-to-end cluster cannot run: %s", skipReason)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	if err := cl.reviveAll(); err != nil {
		t.Fatal(err)
	}
	return cl
}

// errNotYet is what a polled condition returns when it does not hold yet.
var errNotYet = errors.New("not yet")
