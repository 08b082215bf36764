package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestEtcdMemberStop runs a second cluster on a separate three-member etcd
// and stops one member: for agent_ttl + 1 s after, every machine stays listed
// and every unit keeps running with the same process, and a new unit still
// starts.
func TestEtcdMemberStop(t *testing.T) {
	shared := needCluster(t)
	dir := filepath.Join(t.TempDir(), "c")
	start := time.Now()
	c, err := startCluster(shared.binaries, dir, 3)
	if c != nil {
		t.Cleanup(func() {
			start := time.Now()
			if err := c.down(); err != nil {
				t.Error(err)
			}
			t.Logf("down took %v", time.Since(start).Round(time.Millisecond))
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up with a three-member etcd took %v", time.Since(start).Round(time.Millisecond))
	log := filepath.Join(t.TempDir(), "starts")
	var units []string
	for i := 1; i <= 3; i++ {
		units = append(units, "et@"+strconv.Itoa(i)+".service")
	}
	udir := c.unitDir(t, map[string]string{"et@.service": loggedService(log)})
	c.ctl(t, udir, append([]string{"start"}, units...)...)
	mainPID, beaconPID := map[string]int{}, map[string]int{}
	for _, u := range units {
		_, mainPID[u] = c.activeOn(t, u)
	}
	for _, m := range c.machines {
		sd, err := c.systemd(m, beaconUnit)
		if err != nil || sd.Active != "active" {
			t.Fatalf("%s on %s: %+v %v", beaconUnit, m.Name, sd, err)
		}
		beaconPID[m.Name] = sd.MainPID
	}

	member, ok := c.live("etcd", "e1")
	if !ok {
		t.Fatal("etcd member e1 does not run")
	}
	if err := syscall.Kill(member.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLimit, "etcd member e1 stops", func() error {
		if member.Alive() {
			return errNotYet
		}
		return nil
	})
	// Nothing may change for as long as a machine takes to be declared lost.
	polls := 0
	for end := time.Now().Add(agentTTL + time.Second); time.Now().Before(end); polls++ {
		if err := c.undisturbed(mainPID, beaconPID); err != nil {
			t.Fatalf("after etcd member e1 stopped (poll %d): %v", polls, err)
		}
	}
	t.Logf("%d polls saw every machine listed and every unit on its process", polls)
	c.barrier(t, udir, c.machines[1], "et-new.service")
	n := starts(t, log)
	for _, u := range units {
		if n[u] != 1 {
			t.Errorf("%s started %d times, want once", u, n[u])
		}
	}
}

// undisturbed checks that every machine is listed, every unit of mainPID
// runs once on the process it ran on, and the global beaconUnit on each
// machine of beaconPID too.
func (c *cluster) undisturbed(mainPID, beaconPID map[string]int) error {
	for _, m := range c.machines {
		out, err := c.fleetctlOn(m, "", "list-machines", "--output=json", "--fields=machine")
		if err != nil {
			return err
		}
		var rows []struct{ Machine string }
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			return fmt.Errorf("list-machines on %s: %w: %s", m.Name, err, out)
		}
		if len(rows) != machines {
			return fmt.Errorf("list-machines on %s: %s", m.Name, out)
		}
		sd, err := c.systemd(m, beaconUnit)
		if err != nil || sd.Active != "active" || sd.MainPID != beaconPID[m.Name] {
			return fmt.Errorf("%s on %s: %+v %v, want active with MainPID %d", beaconUnit, m.Name, sd, err, beaconPID[m.Name])
		}
	}
	for u, want := range mainPID {
		_, pid, err := c.runningOnce(u)
		if err != nil || pid != want {
			return fmt.Errorf("%s: MainPID %d %v, want %d", u, pid, err, want)
		}
	}
	return nil
}
