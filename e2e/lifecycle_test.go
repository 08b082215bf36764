package e2e

import (
	"fmt"
	"testing"
)

// TestLifecycle walks plain units and template instances through submit,
// load, start, stop, unload and destroy, checking at each step the cluster
// states of list-unit-files (spec §5.6) and what the machines' systemd and
// cgroups really hold.
func TestLifecycle(t *testing.T) {
	c := needCluster(t)
	dir := c.unitDir(t, map[string]string{
		"life.service":   service("/bin/sleep infinity"),
		"lifet@.service": service("/bin/sleep infinity"),
	})
	units := []string{"life.service", "lifet@1.service", "lifet@2.service"}
	ctl := func(args ...string) { c.ctl(t, dir, append(args, units...)...) }

	ctl("submit")
	c.checkStates(t, units, "inactive", "inactive", false)
	c.checkNotRunning(t, units)

	ctl("load")
	placed := c.checkStates(t, units, "loaded", "loaded", true)
	for _, u := range units {
		m := c.machine(t, placed[u])
		eventually(t, waitLimit, u+" loaded in systemd on "+m.Name, func() error {
			sd, err := c.systemd(m, u)
			if err == nil && (sd.Load != "loaded" || sd.Active != "inactive") {
				err = fmt.Errorf("systemd on %s says %+v", m.Name, sd)
			}
			return err
		})
	}
	c.checkNotRunning(t, units)

	ctl("start")
	c.checkStates(t, units, "launched", "launched", true)
	for _, u := range units {
		m, _ := c.activeOn(t, u)
		if m.Name != placed[u] {
			t.Errorf("%s started on %s, loaded on %s", u, m.Name, placed[u])
		}
	}

	ctl("stop")
	c.checkStates(t, units, "loaded", "loaded", true)
	for _, u := range units {
		m := c.machine(t, placed[u])
		eventually(t, waitLimit, u+" stopped in systemd on "+m.Name, func() error {
			sd, err := c.systemd(m, u)
			if err == nil && (sd.Load != "loaded" || sd.Active != "inactive" || sd.Sub != "dead") {
				err = fmt.Errorf("systemd on %s says %+v", m.Name, sd)
			}
			return err
		})
	}
	c.checkNotRunning(t, units)

	ctl("unload")
	c.checkStates(t, units, "inactive", "inactive", false)
	for _, u := range units {
		m := c.machine(t, placed[u])
		eventually(t, waitLimit, u+" gone from systemd on "+m.Name, func() error {
			sd, err := c.systemd(m, u)
			if err == nil && sd.Load == "loaded" {
				err = fmt.Errorf("systemd on %s still has it: %+v", m.Name, sd)
			}
			return err
		})
	}
	c.checkNotRunning(t, units)
	rows, err := c.unitRows()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		for _, u := range units {
			if r.Unit == u {
				t.Errorf("list-units still shows unloaded %s: %+v", u, r)
			}
		}
	}

	ctl("destroy")
	files, err := c.unitFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if f, ok := files[u]; ok {
			t.Errorf("list-unit-files still shows destroyed %s: %+v", u, f)
		}
	}
}

// checkStates checks list-unit-files' DSTATE and STATE of units, and that each
// has a target machine or none; it returns the machine names of the targets.
func (c *cluster) checkStates(t *testing.T, units []string, dstate, state string, placed bool) map[string]string {
	t.Helper()
	files, err := c.unitFiles()
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]string{}
	for _, u := range units {
		f, ok := files[u]
		switch {
		case !ok:
			t.Fatalf("list-unit-files has no %s: %+v", u, files)
		case f.DState != dstate || f.State != state:
			t.Fatalf("%s: DSTATE %s STATE %s, want %s %s", u, f.DState, f.State, dstate, state)
		case placed && c.byID(f.TMachine) == f.TMachine:
			t.Fatalf("%s: target %q is no machine of the cluster", u, f.TMachine)
		case !placed && f.TMachine != "":
			t.Fatalf("%s: target %s, want none", u, c.byID(f.TMachine))
		}
		at[u] = c.byID(f.TMachine)
	}
	return at
}

// checkNotRunning checks that no process of units runs on any machine.
func (c *cluster) checkNotRunning(t *testing.T, units []string) {
	t.Helper()
	for _, u := range units {
		on, err := c.runsOn(u)
		if err != nil {
			t.Fatal(err)
		}
		if len(on) > 0 {
			t.Errorf("%s has processes on %v", u, on)
		}
	}
}
