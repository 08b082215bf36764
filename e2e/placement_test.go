package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestListUnitsShowsSystemd checks that list-units shows, for units that
// run, exit and fail, the ACTIVE and SUB states the machine's systemd has.
func TestListUnitsShowsSystemd(t *testing.T) {
	c := needCluster(t)
	units := map[string]string{
		"lu-run.service":  service("/bin/sleep infinity"),
		"lu-fail.service": service("/bin/sh -c 'exit 3'"),
		"lu-done.service": "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
	}
	want := map[string][2]string{
		"lu-run.service":  {"active", "running"},
		"lu-fail.service": {"failed", "failed"},
		"lu-done.service": {"active", "exited"},
	}
	dir := c.unitDir(t, units)
	c.ctl(t, dir, "start", "--no-block", "lu-run.service", "lu-fail.service", "lu-done.service")
	for u, w := range want {
		eventually(t, waitLimit, u+" shown as "+w[0]+"/"+w[1], func() error {
			rows, err := c.unitRows()
			if err != nil {
				return err
			}
			var got []unitRow
			for _, r := range rows {
				if r.Unit == u {
					got = append(got, r)
				}
			}
			if len(got) != 1 || got[0].Active != w[0] || got[0].Sub != w[1] {
				return fmt.Errorf("list-units rows %+v: %w", got, errNotYet)
			}
			m := c.machine(t, c.byID(got[0].Machine))
			sd, err := c.systemd(m, u)
			if err == nil && (sd.Active != w[0] || sd.Sub != w[1]) {
				err = fmt.Errorf("list-units shows %s/%s, systemd on %s %+v", got[0].Active, got[0].Sub, m.Name, sd)
			}
			return err
		})
	}
	if _, pid := c.activeOn(t, "lu-run.service"); pid == 0 {
		t.Error("lu-run.service has no MainPID")
	}
	c.checkNotRunning(t, []string{"lu-fail.service", "lu-done.service"})
}

// TestConflictsSpread starts four units that conflict with each other on
// three machines: three run, one per machine, and the fourth stays inactive
// until one of the others is destroyed and frees its machine.
func TestConflictsSpread(t *testing.T) {
	c := needCluster(t)
	files := map[string]string{}
	var units []string
	for i := range 4 {
		u := fmt.Sprintf("cf-%d.service", i)
		files[u] = service("/bin/sleep infinity", "Conflicts=cf-*.service")
		units = append(units, u)
	}
	dir := c.unitDir(t, files)
	c.ctl(t, dir, append([]string{"start", "--no-block"}, units...)...)
	var running, waiting []string
	used := map[string]string{}
	eventually(t, waitLimit, "three conflicting units running", func() error {
		running, waiting = nil, nil
		clear(used)
		for _, u := range units {
			m, _, err := c.runningOnce(u)
			if err != nil {
				waiting = append(waiting, u)
				continue
			}
			if other, ok := used[m.Name]; ok {
				return fmt.Errorf("%s and %s both run on %s", u, other, m.Name)
			}
			used[m.Name] = u
			running = append(running, u)
		}
		if len(running) != machines {
			return fmt.Errorf("running %v: %w", running, errNotYet)
		}
		return nil
	})
	extra := waiting[0]
	files2, err := c.unitFiles()
	if err != nil {
		t.Fatal(err)
	}
	if f := files2[extra]; f.DState != "launched" || f.State != "inactive" || f.TMachine != "" {
		t.Errorf("the extra conflicting unit %s: %+v, want desired launched, inactive, unscheduled", extra, f)
	}
	c.checkNotRunning(t, []string{extra})

	freed, _, err := c.runningOnce(running[0])
	if err != nil {
		t.Fatal(err)
	}
	c.ctl(t, dir, "destroy", running[0])
	m, _ := c.activeOn(t, extra)
	if m.Name != freed.Name {
		t.Errorf("%s started on %s, want the freed %s", extra, m.Name, freed.Name)
	}
}

// TestMachineOf starts a unit and two that must run beside it: all three
// run on the same machine.
func TestMachineOf(t *testing.T) {
	c := needCluster(t)
	dir := c.unitDir(t, map[string]string{
		"mo-main.service":  service("/bin/sleep infinity"),
		"mo-side1.service": service("/bin/sleep infinity", "MachineOf=mo-main.service"),
		"mo-side2.service": service("/bin/sleep infinity", "MachineOf=mo-main.service"),
	})
	c.ctl(t, dir, "start", "mo-side1.service", "mo-main.service", "mo-side2.service")
	main, _ := c.activeOn(t, "mo-main.service")
	for _, u := range []string{"mo-side1.service", "mo-side2.service"} {
		if m, _ := c.activeOn(t, u); m.Name != main.Name {
			t.Errorf("%s runs on %s, mo-main.service on %s", u, m.Name, main.Name)
		}
	}
}

// TestMachineMetadata pins units to machines by their metadata (name=mN);
// a unit whose metadata no machine has stays unscheduled.
func TestMachineMetadata(t *testing.T) {
	c := needCluster(t)
	dir := c.unitDir(t, map[string]string{
		"md-2.service":    service("/bin/sleep infinity", "MachineMetadata=name=m2"),
		"md-3.service":    service("/bin/sleep infinity", "MachineMetadata=name=m3"),
		"md-3b.service":   service("/bin/sleep infinity", "MachineMetadata=name=m3"),
		"md-none.service": service("/bin/sleep infinity", "MachineMetadata=name=m9"),
	})
	c.ctl(t, dir, "start", "--no-block", "md-2.service", "md-3.service", "md-3b.service", "md-none.service")
	for u, want := range map[string]string{"md-2.service": "m2", "md-3.service": "m3", "md-3b.service": "m3"} {
		if m, _ := c.activeOn(t, u); m.Name != want {
			t.Errorf("%s runs on %s, want %s", u, m.Name, want)
		}
	}
	files, err := c.unitFiles()
	if err != nil {
		t.Fatal(err)
	}
	if f := files["md-none.service"]; f.State != "inactive" || f.TMachine != "" {
		t.Errorf("md-none.service, pinned to no machine: %+v, want inactive and unscheduled", f)
	}
	c.checkNotRunning(t, []string{"md-none.service"})
}

// TestGlobal starts a global unit: it runs on every machine, and stopping
// and destroying it stops it everywhere.
func TestGlobal(t *testing.T) {
	c := needCluster(t)
	dir := c.unitDir(t, map[string]string{"gl.service": service("/bin/sleep infinity", "Global=true")})
	c.ctl(t, dir, "start", "gl.service")
	c.globalRuns(t, "gl.service", c.machines)
	files, err := c.unitFiles()
	if err != nil {
		t.Fatal(err)
	}
	if f := files["gl.service"]; f.DState != "launched" || f.State != "" {
		t.Errorf("global unit in list-unit-files: %+v, want DSTATE launched and no STATE", f)
	}
	c.ctl(t, dir, "stop", "gl.service")
	eventually(t, waitLimit, "gl.service stopped everywhere", func() error {
		on, err := c.runsOn("gl.service")
		if err == nil && len(on) > 0 {
			err = fmt.Errorf("still runs on %v: %w", on, errNotYet)
		}
		return err
	})
	c.ctl(t, dir, "destroy", "gl.service")
	eventually(t, waitLimit, "gl.service gone from list-units", func() error {
		rows, err := c.unitRows()
		for _, r := range rows {
			if r.Unit == "gl.service" {
				return fmt.Errorf("list-units shows %+v: %w", r, errNotYet)
			}
		}
		return err
	})
}

// globalRuns waits until unit runs on each of ms, reported active/running
// by list-units and by each machine's systemd.
func (c *cluster) globalRuns(t *testing.T, unit string, ms []machine) {
	t.Helper()
	for _, m := range ms {
		eventually(t, waitLimit, unit+" running on "+m.Name, func() error {
			pids, err := c.pids(m, unit)
			if err != nil {
				return err
			}
			sd, err := c.systemd(m, unit)
			if err != nil {
				return err
			}
			if sd.Active != "active" || sd.Sub != "running" || !slices.Contains(pids, sd.MainPID) {
				return fmt.Errorf("systemd says %+v, cgroup holds %v: %w", sd, pids, errNotYet)
			}
			rows, err := c.unitRows()
			if err != nil {
				return err
			}
			for _, r := range rows {
				if r.Unit == unit && r.Machine == m.ID && r.Active == "active" && r.Sub == "running" {
					return nil
				}
			}
			return fmt.Errorf("list-units does not show it active there: %w", errNotYet)
		})
	}
}

// TestReplaces starts a unit, then one that replaces it, pinned to its
// machine: the replacing unit takes the machine and the replaced one moves.
func TestReplaces(t *testing.T) {
	c := needCluster(t)
	dir := c.unitDir(t, map[string]string{"rp-old.service": service("/bin/sleep infinity")})
	c.ctl(t, dir, "start", "rp-old.service")
	was, _ := c.activeOn(t, "rp-old.service")
	body := service("/bin/sleep infinity", "Replaces=rp-old.service", "MachineMetadata=name="+was.Name)
	if err := os.WriteFile(filepath.Join(dir, "rp-new.service"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ctl(t, dir, "start", "rp-new.service")
	if m, _ := c.activeOn(t, "rp-new.service"); m.Name != was.Name {
		t.Errorf("rp-new.service runs on %s, want %s", m.Name, was.Name)
	}
	eventually(t, waitLimit, "rp-old.service moved off "+was.Name, func() error {
		m, _, err := c.runningOnce("rp-old.service")
		if err == nil && m.Name == was.Name {
			err = fmt.Errorf("still on %s: %w", m.Name, errNotYet)
		}
		return err
	})
}

// TestReplaceRunning starts a unit and starts it again with --replace and a
// changed file: it runs the new command, as a new process.
func TestReplaceRunning(t *testing.T) {
	c := needCluster(t)
	dir := c.unitDir(t, map[string]string{"rr.service": service("/bin/sleep 1001")})
	c.ctl(t, dir, "start", "rr.service")
	_, old := c.activeOn(t, "rr.service")
	if err := os.WriteFile(filepath.Join(dir, "rr.service"), []byte(service("/bin/sleep 1002")), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ctl(t, dir, "start", "--replace", "rr.service")
	if cat := c.ctl(t, dir, "cat", "rr.service"); !strings.Contains(cat, "sleep 1002") {
		t.Errorf("fleetctl cat after --replace:\n%s", cat)
	}
	eventually(t, waitLimit, "rr.service running the new command", func() error {
		_, pid, err := c.runningOnce("rr.service")
		if err != nil {
			return err
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return fmt.Errorf("MainPID %d: %w", pid, err)
		}
		if pid == old || !strings.Contains(string(cmdline), "1002") {
			return fmt.Errorf("MainPID %d (was %d) runs %q: %w", pid, old, cmdline, errNotYet)
		}
		return nil
	})
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", old)); err == nil {
		t.Errorf("the old process %d still runs", old)
	}
}
