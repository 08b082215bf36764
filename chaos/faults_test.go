package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterprobe"
)

// instances names n instances of template prefix@.service.
func instances(prefix string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, prefix+"@"+strconv.Itoa(i)+".service")
	}
	return out
}

// except returns the machines other than name.
func (c *cluster) except(name string) []machine {
	var out []machine
	for _, m := range c.machines {
		if m.Name != name {
			out = append(out, m)
		}
	}
	return out
}

// beaconStarts counts the starts of the global beacon by machine name.
func (c *cluster) beaconStarts(t *testing.T) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, id := range startCounts(t, c.beaconLog)[beaconUnit] {
		n[c.byID(id)]++
	}
	return n
}

// checkStarts fails the test for every unit of units not started exactly
// want(unit) times according to log.
func checkStarts(t *testing.T, log string, units []string, want func(string) int) {
	t.Helper()
	n := startCounts(t, log)
	for _, u := range units {
		if len(n[u]) != want(u) {
			t.Errorf("%s started %d times (on %v), want %d", u, len(n[u]), n[u], want(u))
		}
	}
}

// TestKillFleetd kills a fleetd with SIGKILL: its units keep running; after
// fleet-cluster restart it adopts them and restarts none.
func TestKillFleetd(t *testing.T) {
	c := needCluster(t)
	victim := c.machine(t, "m2")
	log := filepath.Join(t.TempDir(), "starts")
	// Pinned to the victim: however long the restart takes, they have no
	// other place to go, so any start beyond the first is a restart by fleet.
	dir := c.unitDir(t, map[string]string{"kf@.service": loggedService(log, "MachineMetadata=name="+victim.Name)})
	units := instances("kf", 3)
	c.ctl(t, victim, dir, append([]string{"start"}, units...)...)
	globals := []string{beaconUnit}
	before := c.settled(t, "", units, globals, c.machines)
	beacons := c.beaconStarts(t)

	p := c.signal(t, victim, syscall.SIGKILL)
	killed := time.Now()
	eventually(t, waitLimit, victim.Name+"'s fleetd gone", func() error {
		if p.Alive() {
			return errNotYet
		}
		return nil
	})
	during, err := c.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range append(slices.Clone(units), globals...) {
		if !slices.Equal(during[u][victim.Name], before[u][victim.Name]) {
			t.Errorf("%s on %s with its fleetd killed: processes %v, were %v", u, victim.Name, during[u][victim.Name], before[u][victim.Name])
		}
	}
	if err := c.restart(victim.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s's fleetd back %v after the kill", victim.Name, time.Since(killed).Round(time.Millisecond))
	c.barrier(t, dir, victim, "kf-barrier.service")
	after := c.settled(t, "", units, globals, c.machines)
	for _, u := range append(slices.Clone(units), globals...) {
		if !slices.Equal(after[u][victim.Name], before[u][victim.Name]) {
			t.Errorf("%s on %s after the restart: processes %v, were %v", u, victim.Name, after[u][victim.Name], before[u][victim.Name])
		}
	}
	checkStarts(t, log, units, func(string) int { return 1 })
	if now := c.beaconStarts(t); !maps.Equal(now, beacons) {
		t.Errorf("%s started again: starts by machine %v, were %v", beaconUnit, now, beacons)
	}
}

// TestFreezeFleetd stops a fleetd that is not the engine leader with SIGSTOP
// for longer than agent_ttl: its units start elsewhere while its own copies
// run on (fleet's behaviour without self-fencing; the window is logged).
// After SIGCONT its agent stops the stale copies and restarts nothing.
func TestFreezeFleetd(t *testing.T) {
	c := needCluster(t)
	c.isolate(t, "fz", false, "SIGSTOP", "SIGCONT",
		func(victim machine) { c.freeze(t, victim) },
		func(victim machine) { c.signal(t, victim, syscall.SIGCONT) })
}

// TestPartition cuts a machine off etcd and every other machine (its link in
// the hub namespace down) for longer than agent_ttl, on a second cluster
// whose machines each live in a network namespace (fleet-cluster up -netns):
// its units start elsewhere while its own copies run on; once the link is up
// again its agent stops the stale copies and restarts nothing. The victim is
// first a machine that is not the engine leader, then the engine leader.
func TestPartition(t *testing.T) {
	onlyInFullSet(t, "brings up a second cluster, in network namespaces")
	c := netnsCluster(t)
	setLink := func(state string) func(machine) {
		return func(m machine) {
			if err := c.setLink(m, state); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("machine", func(t *testing.T) { c.isolate(t, "pt", false, "partition", "healing", setLink("down"), setLink("up")) })
	t.Run("leader", func(t *testing.T) { c.isolate(t, "pl", true, "partition", "healing", setLink("down"), setLink("up")) })
}

// netnsCluster brings up a second cluster of the shared cluster's shape
// with each machine in a network namespace (fleet-cluster up -netns), stopped
// at the end of the test.
func netnsCluster(t *testing.T) *cluster {
	t.Helper()
	needCluster(t)
	c, err := startCluster(filepath.Dir(cl.fleetd), filepath.Join(t.TempDir(), "c"), "-netns")
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
	return c
}

// isolate starts six units (instances of prefix@.service), cuts off a
// machine with fault (the engine leader if leader, else the non-leader
// machine running most of them) until each of its units runs on another
// machine (longer than agent_ttl), then heals it. Checked after the fault:
// every unit runs on exactly one machine other than the victim, whose copies
// fleet lets run on, and nothing elsewhere was touched; after healing: the
// stale copies stop, every placement is still the one made during the fault
// (the victim's engine wrote nothing), nothing moves back or restarts, units
// that moved started twice and the others once, the global unit never again.
// The double-run window of each moved unit is logged.
func (c *cluster) isolate(t *testing.T, prefix string, leader bool, faultName, healName string, fault, heal func(machine)) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{prefix + "@.service": loggedService(log)})
	units := instances(prefix, 6)
	c.ctl(t, c.machines[0], dir, append([]string{"start"}, units...)...)
	globals := []string{beaconUnit}
	before := c.settled(t, "", units, globals, c.machines)
	var lead machine
	eventually(t, waitLimit, "one engine leader", func() (err error) { lead, err = c.leader(c.machines); return err })
	victim := lead
	if !leader {
		victim = c.busiest(t, before, units, lead.Name)
	}
	moved := unitsOn(before, units, victim.Name)
	beacons := c.beaconStarts(t)
	t.Logf("leader %s; %s of %s, which runs %v", lead.Name, faultName, victim.Name, moved)

	w := c.watch(units)
	fault(victim)
	cut := time.Now()
	others := c.except(victim.Name)
	during := c.settled(t, victim.Name, units, globals, others)
	t.Logf("units of %s running elsewhere %v after the %s", victim.Name, time.Since(cut).Round(time.Millisecond), faultName)
	for _, u := range moved {
		if during[u][victim.Name] == nil {
			t.Errorf("%s's copy on %s is gone during the %s: nothing there should have stopped it", u, victim.Name, faultName)
		}
	}
	c.checkUntouched(t, before, during, units, victim.Name)
	placed, err := c.unitFiles(others[0])
	if err != nil {
		t.Fatal(err)
	}

	heal(victim)
	healed := time.Now()
	c.staleGone(t, moved, victim.Name)
	t.Logf("stale copies on %s gone %v after the %s", victim.Name, time.Since(healed).Round(time.Millisecond), healName)
	c.barrier(t, dir, victim, prefix+"-barrier.service")
	after := c.settled(t, "", units, globals, c.machines)
	c.checkUntouched(t, during, after, units, victim.Name)
	now, err := c.unitFiles(others[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if now[u].TMachine != placed[u].TMachine {
			t.Errorf("%s placed on %s after the %s, was %s during the %s", u, now[u].TMachine, healName, placed[u].TMachine, faultName)
		}
	}
	checkStarts(t, log, units, func(u string) int {
		if slices.Contains(moved, u) {
			return 2
		}
		return 1
	})
	if now := c.beaconStarts(t); !maps.Equal(now, beacons) {
		t.Errorf("%s started again: starts by machine %v, were %v", beaconUnit, now, beacons)
	}
	logOverlaps(t, w.end(t), moved)
}

// TestFreezeLeader stops the engine leader's fleetd with SIGSTOP until
// another engine leads; after SIGCONT the old leader writes nothing with its
// old fence (every placement stays as the new leader made it) and the change
// of leader restarts no unit that did not have to move.
func TestFreezeLeader(t *testing.T) {
	c := needCluster(t)
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{"fl@.service": loggedService(log)})
	units := instances("fl", 6)
	c.ctl(t, c.machines[0], dir, append([]string{"start"}, units...)...)
	globals := []string{beaconUnit}
	before := c.settled(t, "", units, globals, c.machines)
	var old machine
	eventually(t, waitLimit, "one engine leader", func() (err error) { old, err = c.leader(c.machines); return err })
	moved := unitsOn(before, units, old.Name)
	beacons := c.beaconStarts(t)
	t.Logf("freezing the engine leader %s, which runs %v", old.Name, moved)

	w := c.watch(units)
	frozen := c.freeze(t, old)
	others := c.except(old.Name)
	var lead machine
	eventually(t, 2*waitLimit, "another engine leading", func() (err error) { lead, err = c.leader(others); return err })
	t.Logf("%s leads %v after the freeze", lead.Name, time.Since(frozen).Round(time.Millisecond))
	during := c.settled(t, old.Name, units, globals, others)
	c.checkUntouched(t, before, during, units, old.Name)
	placed, err := c.unitFiles(lead)
	if err != nil {
		t.Fatal(err)
	}
	oldLog := old.FleetdLog
	staleBefore := countWord(t, oldLog, "stale engine fence")

	c.signal(t, old, syscall.SIGCONT)
	thawed := time.Now()
	eventually(t, waitLimit, old.Name+"'s engine knows it no longer leads", func() error {
		got, err := c.leader(c.machines)
		if err != nil {
			return err
		}
		if got.Name != lead.Name {
			return fmt.Errorf("%s leads, want %s", got.Name, lead.Name)
		}
		return nil
	})
	c.staleGone(t, moved, old.Name)
	t.Logf("stale copies on %s gone %v after SIGCONT", old.Name, time.Since(thawed).Round(time.Millisecond))
	c.barrier(t, dir, old, "fl-barrier.service")
	after := c.settled(t, "", units, globals, c.machines)
	c.checkUntouched(t, during, after, units, old.Name)
	now, err := c.unitFiles(lead)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if now[u].TMachine != placed[u].TMachine {
			t.Errorf("%s placed on %s after the old leader woke, was %s", u, now[u].TMachine, placed[u].TMachine)
		}
	}
	checkStarts(t, log, units, func(u string) int {
		if slices.Contains(moved, u) {
			return 2
		}
		return 1
	})
	if now := c.beaconStarts(t); !maps.Equal(now, beacons) {
		t.Errorf("%s started again: starts by machine %v, were %v", beaconUnit, now, beacons)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := clusterprobe.Metrics(ctx, old.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("old leader %s: %d log lines with a stale fence refused, fleet_engine_passes_total{result=error} %v",
		old.Name, countWord(t, oldLog, "stale engine fence")-staleBefore, s[`fleet_engine_passes_total{kind="full",result="error"}`])
	logOverlaps(t, w.end(t), moved)
}

// busiest returns the machine other than skip running most of units.
func (c *cluster) busiest(t *testing.T, l layout, units []string, skip string) machine {
	t.Helper()
	best, n := "", 0
	for _, m := range c.except(skip) {
		if k := len(unitsOn(l, units, m.Name)); k > n {
			best, n = m.Name, k
		}
	}
	if n == 0 {
		t.Fatalf("no unit of %v on a machine other than %s: %v", units, skip, l)
	}
	return c.machine(t, best)
}

// unitsOn returns the units of units running on machine name.
func unitsOn(l layout, units []string, name string) []string {
	var out []string
	for _, u := range units {
		if l[u][name] != nil {
			out = append(out, u)
		}
	}
	return out
}

// checkUntouched fails the test for every unit of units that ran outside
// machine skip in before and does not run with the same processes on the
// same machine in after: nothing moved or restarted it.
func (c *cluster) checkUntouched(t *testing.T, before, after layout, units []string, skip string) {
	t.Helper()
	for _, u := range units {
		for m, pids := range before[u] {
			if m != skip && !slices.Equal(after[u][m], pids) {
				t.Errorf("%s on %s: processes %v, were %v (restarted or moved without need)", u, m, after[u][m], pids)
			}
		}
	}
}

// staleGone waits until none of units runs on machine name any more.
func (c *cluster) staleGone(t *testing.T, units []string, name string) {
	t.Helper()
	eventually(t, waitLimit, "stale copies on "+name+" stopped", func() error {
		l, err := c.snapshot()
		if err != nil {
			return err
		}
		for _, u := range units {
			if l[u][name] != nil {
				return fmt.Errorf("%s still runs on %s: %w", u, name, errNotYet)
			}
		}
		return nil
	})
}

// logOverlaps logs the double-run window of each unit of moved, and fails
// the test for a unit that moved without ever being seen on two machines
// (the watcher missed the fault) or that ran twice without having moved.
func logOverlaps(t *testing.T, seen map[string]overlap, moved []string) {
	t.Helper()
	var worst time.Duration
	for u, o := range seen {
		switch {
		case slices.Contains(moved, u) && o.times == 0:
			t.Errorf("%s moved but was never seen on two machines", u)
		case !slices.Contains(moved, u) && o.times > 0:
			t.Errorf("%s did not move but ran on two machines %d times (%v)", u, o.times, o.total)
		case o.times > 0:
			t.Logf("%s ran on two machines for %v (%d window(s))", u, o.total.Round(time.Millisecond), o.times)
		}
		worst = max(worst, o.longest)
	}
	t.Logf("double-run window: longest %v over %d moved units", worst.Round(time.Millisecond), len(moved))
}

// countWord counts the occurrences of word in file.
func countWord(t *testing.T, file, word string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Count(string(data), word)
}

// TestKillManager kills a machine's systemd manager with every process under
// it (its units), as a crash of the user session would, while its fleetd
// runs on; fleet-cluster restart starts a new manager. fleetd reconnects and
// starts each unit of that machine once more (a new manager instance);
// nothing is lost and nothing elsewhere restarts.
func TestKillManager(t *testing.T) {
	c := needCluster(t)
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{"km@.service": loggedService(log)})
	units := instances("km", 6)
	c.ctl(t, c.machines[0], dir, append([]string{"start"}, units...)...)
	globals := []string{beaconUnit}
	before := c.settled(t, "", units, globals, c.machines)
	victim := c.busiest(t, before, units, "")
	lost := unitsOn(before, units, victim.Name)
	beacons := c.beaconStarts(t)
	t.Logf("killing the manager of %s, which runs %v", victim.Name, lost)

	killed := c.killTree(t, filepath.Join(c.cgroup, victim.Name, "manager"))
	if _, ok := c.live("fleetd", victim.Name); !ok {
		t.Fatalf("%s's fleetd died with its manager", victim.Name)
	}
	if err := c.restart(victim.Name); err != nil {
		t.Fatal(err)
	}
	after := c.settled(t, "", units, globals, c.machines)
	t.Logf("every unit running once again %v after the kill", time.Since(killed).Round(time.Millisecond))
	c.checkUntouched(t, before, after, units, victim.Name)
	for _, u := range lost {
		t.Logf("%s came back on %v", u, after.on(u))
	}
	beacons[victim.Name]++
	// A unit's shell is seen running before it has logged its start: wait
	// for the restarts to be logged, then check that there are no others.
	eventually(t, waitLimit, "the restarts logged", func() error {
		n := startCounts(t, log)
		for _, u := range lost {
			if len(n[u]) < 2 {
				return fmt.Errorf("%s logged %d starts: %w", u, len(n[u]), errNotYet)
			}
		}
		if got := c.beaconStarts(t)[victim.Name]; got < beacons[victim.Name] {
			return fmt.Errorf("%s logged %d starts on %s: %w", beaconUnit, got, victim.Name, errNotYet)
		}
		return nil
	})
	checkStarts(t, log, units, func(u string) int {
		if slices.Contains(lost, u) {
			return 2
		}
		return 1
	})
	if now := c.beaconStarts(t); !maps.Equal(now, beacons) {
		t.Errorf("%s starts by machine %v, want %v (once more on %s only)", beaconUnit, now, beacons, victim.Name)
	}
}

// killTree kills every process in the cgroup dir and below until none is
// left, and returns when it started.
func (c *cluster) killTree(t *testing.T, dir string) time.Time {
	t.Helper()
	start := time.Now()
	eventually(t, waitLimit, "every process under "+dir+" killed", func() error { return killAll(dir) })
	return start
}

// killAll sends SIGKILL to every process in the cgroup dir and below; it
// returns errNotYet when there were any.
func killAll(dir string) error {
	pids, err := clusterprobe.TreePIDs(dir)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	if len(pids) > 0 {
		return fmt.Errorf("killed %v: %w", pids, errNotYet)
	}
	return nil
}
