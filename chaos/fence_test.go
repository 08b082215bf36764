package chaos

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fenceGrace is the agent_fence_grace of TestSelfFence's cluster: shorter
// than agentTTL, so that a cut-off machine stops its units before its
// presence can expire and the engine place them elsewhere.
const fenceGrace = 2 * time.Second

// TestSelfFence cuts off, on a cluster in network namespaces whose fleetds
// run with agent_fence_grace (fleet-cluster up -netns -fleetd-option), the
// non-leader machine running most of six units, as TestPartition does: the
// victim stops its copies (and the global beacon) before the moved copies
// start, so that no unit is ever seen on two machines by the cgroup watcher
// (20 ms samples); every unit runs on exactly one machine during the
// partition and after it, none is lost. After healing the units that moved
// stay where they are, nothing else restarts, and the beacon starts again on
// the victim: that restart is what self-fencing costs here.
func TestSelfFence(t *testing.T) {
	onlyInFullSet(t, "brings up a second cluster, in network namespaces")
	needCluster(t)
	c, err := startCluster(filepath.Dir(cl.fleetd), filepath.Join(t.TempDir(), "c"), "-netns", "-fleetd-option", "agent_fence_grace="+fenceGrace.String())
	if c != nil {
		t.Cleanup(func() {
			if err := c.down(); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.hub == "" {
		t.Fatal("fleet-cluster up -netns recorded no hub namespace")
	}
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{"sf@.service": loggedService(log)})
	units := instances("sf", 6)
	c.ctl(t, c.machines[0], dir, append([]string{"start"}, units...)...)
	globals := []string{beaconUnit}
	before := c.settled(t, "", units, globals, c.machines)
	var lead machine
	eventually(t, waitLimit, "one engine leader", func() (err error) { lead, err = c.leader(c.machines); return err })
	victim := c.busiest(t, before, units, lead.Name)
	moved := unitsOn(before, units, victim.Name)
	beacons := c.beaconStarts(t)
	fencedBefore := countWord(t, victim.FleetdLog, "fenced: presence not renewed")
	t.Logf("leader %s; partition of %s, which runs %v (agent_fence_grace %v, agent_ttl %v)", lead.Name, victim.Name, moved, fenceGrace, agentTTL)

	w := c.watch(units)
	if err := c.setLink(victim, "down"); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	c.staleGone(t, append(slices.Clone(moved), beaconUnit), victim.Name)
	t.Logf("%s's units and beacon stopped %v after the partition (fenced)", victim.Name, time.Since(cut).Round(time.Millisecond))
	others := c.except(victim.Name)
	during := c.settled(t, victim.Name, units, globals, others)
	t.Logf("units of %s running elsewhere %v after the partition", victim.Name, time.Since(cut).Round(time.Millisecond))
	c.checkUntouched(t, before, during, units, victim.Name)
	placed, err := c.unitFiles(others[0])
	if err != nil {
		t.Fatal(err)
	}

	if err := c.setLink(victim, "up"); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	c.barrier(t, dir, victim, "sf-barrier.service")
	after := c.settled(t, "", units, globals, c.machines)
	t.Logf("%s caught up (barrier running, beacon back) %v after the healing", victim.Name, time.Since(healed).Round(time.Millisecond))
	c.checkUntouched(t, during, after, units, victim.Name)
	now, err := c.unitFiles(others[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if now[u].TMachine != placed[u].TMachine || now[u].TMachine == victim.Name && slices.Contains(moved, u) {
			t.Errorf("%s placed on %s after the healing, was %s during the partition", u, now[u].TMachine, placed[u].TMachine)
		}
	}
	beacons[victim.Name]++
	eventually(t, waitLimit, "the beacon's restart on "+victim.Name+" logged", func() error {
		if got := c.beaconStarts(t)[victim.Name]; got < beacons[victim.Name] {
			return fmt.Errorf("%s logged %d starts on %s: %w", beaconUnit, got, victim.Name, errNotYet)
		}
		return nil
	})
	checkStarts(t, log, units, func(u string) int {
		if slices.Contains(moved, u) {
			return 2
		}
		return 1
	})
	if got := c.beaconStarts(t); !maps.Equal(got, beacons) {
		t.Errorf("%s starts by machine %v, want %v (once more on %s only)", beaconUnit, got, beacons, victim.Name)
	}
	if n := countWord(t, victim.FleetdLog, "fenced: presence not renewed") - fencedBefore; n != 1 {
		t.Errorf("%s's fleetd logged %d fences, want 1:\n%s", victim.Name, n, linesWith(t, victim.FleetdLog, "fenced", "presence"))
	}
	seen := w.end(t)
	for _, u := range units {
		if o := seen[u]; o.times > 0 {
			t.Errorf("%s ran on two machines %d times (%v) with self-fencing on", u, o.times, o.total.Round(time.Millisecond))
		}
	}
	t.Logf("double-run window with self-fencing: 0 over %d moved units", len(moved))
}

// linesWith returns the lines of file holding any of words.
func linesWith(t *testing.T, file string, words ...string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(l, w) }) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
