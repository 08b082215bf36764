package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loggedService is a unit file whose every start appends "<unit> <machine
// ID>" to log, then sleeps: the log counts the starts of each unit.
func loggedService(log string, fleet ...string) string {
	return service(`/bin/sh -c 'echo "%n %m" >> `+log+`; exec /bin/sleep infinity'`, fleet...)
}

// starts counts the starts of each unit in a log written by loggedService.
func starts(t *testing.T, log string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	n := map[string]int{}
	for line := range strings.Lines(string(data)) {
		unit, _, _ := strings.Cut(line, " ")
		n[unit]++
	}
	return n
}

// TestFailover kills a machine (every process in its cgroup: fleetd, the
// systemd manager and its units, as a power loss would): its units run
// elsewhere (the time logged against agent_ttl + 1 s). Then the machine comes
// back: the global unit runs on it again, and no unit is started a second
// time.
func TestFailover(t *testing.T) {
	c := needCluster(t)
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{"fo@.service": loggedService(log)})
	var units []string
	for i := 1; i <= 6; i++ {
		units = append(units, "fo@"+strconv.Itoa(i)+".service")
	}
	c.ctl(t, dir, append([]string{"start"}, units...)...)
	on := map[string][]string{}
	mainPID := map[string]int{}
	for _, u := range units {
		m, pid := c.activeOn(t, u)
		on[m.Name] = append(on[m.Name], u)
		mainPID[u] = pid
	}
	// m1's fleetd embeds etcd: the victim is the other machine with more units.
	victim := c.machine(t, "m2")
	if len(on["m3"]) > len(on["m2"]) {
		victim = c.machine(t, "m3")
	}
	moved := on[victim.Name]
	if len(moved) == 0 {
		t.Fatalf("no unit on m2 or m3: %v", on)
	}
	t.Logf("placement %v; killing %s", on, victim.Name)

	killed := c.kill(t, victim)
	// The processes in the cgroups are the fact measured: the poll is cheap
	// and so does not delay the measure; fleet's view is checked after.
	left := map[string]bool{}
	for _, u := range moved {
		left[u] = true
	}
	var worst time.Duration
	eventually(t, agentTTL+waitLimit, "the units of "+victim.Name+" running elsewhere", func() error {
		for u := range left {
			on, err := c.runsOn(u)
			if err != nil {
				return err
			}
			if len(on) == 0 {
				return fmt.Errorf("%s runs nowhere: %w", u, errNotYet)
			}
			took := time.Since(killed)
			worst = max(worst, took)
			t.Logf("%s runs on %v %v after the kill", u, on, took.Round(time.Millisecond))
			delete(left, u)
		}
		return nil
	})
	// The target, agent_ttl + 1 s, is a performance target: fleet-bench
	// measures it (BENCHMARKS.md); on a loaded host a test cannot hold it.
	t.Logf("failover took %v (target agent_ttl + 1 s = %v)", worst.Round(time.Millisecond), agentTTL+time.Second)
	for _, u := range moved {
		if m, _ := c.activeOn(t, u); m.Name == victim.Name {
			t.Errorf("%s still placed on the dead %s", u, victim.Name)
		}
	}

	if err := c.restart(victim.Name); err != nil {
		t.Fatal(err)
	}
	c.globalRuns(t, beaconUnit, []machine{victim})
	c.barrier(t, dir, victim, "fo-barrier.service")
	n := starts(t, log)
	for _, u := range units {
		m, pid, err := c.runningOnce(u)
		if err != nil {
			t.Errorf("after %s came back: %v", victim.Name, err)
			continue
		}
		want := 1
		if m.Name == victim.Name {
			t.Errorf("%s moved back to %s", u, victim.Name)
		}
		if slices.Contains(moved, u) {
			want = 2
		} else if pid != mainPID[u] {
			t.Errorf("%s on %s restarted: MainPID %d, was %d", u, m.Name, pid, mainPID[u])
		}
		if n[u] != want {
			t.Errorf("%s started %d times, want %d", u, n[u], want)
		}
	}
}

// TestDetachRestart restarts a fleetd in shutdown_mode=detach: its units keep
// running through the restart and the new fleetd adopts them without
// restarting any (same MainPID, no new start).
func TestDetachRestart(t *testing.T) {
	c := needCluster(t)
	m := c.machine(t, "m2")
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{"dt@.service": loggedService(log, "MachineMetadata=name=m2")})
	units := []string{"dt@1.service", "dt@2.service"}
	c.ctl(t, dir, append([]string{"start"}, units...)...)
	mainPID := map[string]int{}
	for _, u := range units {
		_, mainPID[u] = c.activeOn(t, u)
	}
	beacon, err := c.systemd(m, beaconUnit)
	if err != nil || beacon.Active != "active" {
		t.Fatalf("%s on m2: %+v %v", beaconUnit, beacon, err)
	}
	units = append(units, beaconUnit)
	mainPID[beaconUnit] = beacon.MainPID

	fleetd, ok := c.live("fleetd", m.Name)
	if !ok {
		t.Fatal("m2's fleetd does not run")
	}
	conf := filepath.Join(m.Dir, "fleet.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("shutdown_mode=detach\n")
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	fleetdLog := filepath.Join(m.Dir, "fleetd.log")
	before := countLines(t, fleetdLog, "reload: applied", "shutdown_mode")
	if err := syscall.Kill(fleetd.PID, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLimit, "m2's fleetd applies shutdown_mode=detach", func() error {
		if countLines(t, fleetdLog, "reload: applied", "shutdown_mode") == before {
			return errNotYet
		}
		return nil
	})
	if err := syscall.Kill(fleetd.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLimit, "m2's fleetd exits", func() error {
		if fleetd.Alive() {
			return errNotYet
		}
		return nil
	})
	for _, u := range units {
		if sd, err := c.systemd(m, u); err != nil || sd.Active != "active" || sd.MainPID != mainPID[u] {
			t.Errorf("%s with m2's fleetd stopped in detach mode: %+v %v, want active with MainPID %d", u, sd, err, mainPID[u])
		}
	}

	if err := c.restart(m.Name); err != nil {
		t.Fatal(err)
	}
	c.barrier(t, dir, m, "dt-barrier.service")
	n := starts(t, log)
	for _, u := range units {
		got, pid, err := c.runningOnce(u)
		if u == beaconUnit {
			var sd sdUnit
			sd, err = c.systemd(m, u)
			got, pid = m, sd.MainPID
		}
		switch {
		case err != nil:
			t.Errorf("after the restart: %v", err)
		case got.Name != m.Name || pid != mainPID[u]:
			t.Errorf("%s runs on %s with MainPID %d; want m2, %d", u, got.Name, pid, mainPID[u])
		case u != beaconUnit && n[u] != 1:
			t.Errorf("%s started %d times, want once", u, n[u])
		}
	}
}

// barrier starts a unit pinned to machine m and waits until it runs there:
// m's fleetd has then caught up with the cluster.
func (c *cluster) barrier(t *testing.T, dir string, m machine, unit string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, unit), []byte(service("/bin/sleep infinity", "MachineMetadata=name="+m.Name)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ctl(t, dir, "start", unit)
	if got, _ := c.activeOn(t, unit); got.Name != m.Name {
		t.Fatalf("%s runs on %s, pinned to %s", unit, got.Name, m.Name)
	}
}

// kill kills every process in machine m's cgroup until none is left, and
// returns when it started.
func (c *cluster) kill(t *testing.T, m machine) time.Time {
	t.Helper()
	start := time.Now()
	root := filepath.Join(c.cgroup, m.Name)
	eventually(t, waitLimit, "every process of "+m.Name+" killed", func() error {
		var pids []int
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.Name() != "cgroup.procs" {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for f := range strings.FieldsSeq(string(data)) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					return err
				}
				pids = append(pids, pid)
			}
			return nil
		})
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
	})
	return start
}

// countLines counts the lines of file holding every one of words.
func countLines(t *testing.T, file string, words ...string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			n++
		}
	}
	return n
}
