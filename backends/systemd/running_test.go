package systemd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/systemd"
	"github.com/fleet-rebuild/fleet/core"
)

// Tests that units really run under the manager, and that what happens to them
// outside fleet is seen.

func TestUnitRunsInManagerCgroup(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, nil)
	out := filepath.Join(t.TempDir(), "out")
	// systemd turns "$$" into "$", so the shell sees "$$": its own PID.
	unit := fmt.Sprintf("[Service]\nExecStart=/bin/sh -c 'echo hello from $$$$ > %s; exec sleep 600'\n", out)
	install(t, m, "runs.service", unit)
	if err := m.Start(t.Context(), "runs.service"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	s := waitUnit(t, m, "runs.service", state(core.LoadLoaded, core.ActiveActive, "running"))
	if s.Hash != core.HashBytes([]byte(unit)) {
		t.Errorf("hash = %s, want %s", s.Hash, core.HashBytes([]byte(unit)))
	}
	var pid int
	for range 250 {
		data, err := os.ReadFile(out)
		if f := strings.Fields(string(data)); err == nil && len(f) == 3 {
			pid, _ = strconv.Atoi(f[2])
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatalf("ExecStart output never appeared in %s", out)
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("unit process %d: %v", pid, err)
	}
	want := ":" + um.Cgroup() + "/app.slice/runs.service"
	if !strings.Contains(string(cg), want) {
		t.Fatalf("unit process %d is in cgroups\n%s\nwant one ending %s", pid, cg, want)
	}
}

func TestCrashingUnitShowsFailed(t *testing.T) {
	m := open(t, sharedManager(t), nil)
	install(t, m, "crash.service", "[Service]\nExecStart=/bin/sh -c 'exit 3'\n")
	ch := m.Notify(t.Context())
	if err := m.Start(t.Context(), "crash.service"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitUnit(t, m, "crash.service", state(core.LoadLoaded, core.ActiveFailed, "failed"))
	if !notified(ch, 5*time.Second) {
		t.Fatal("no notification for a unit that failed")
	}
}

func TestStoppedBehindFleetsBack(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, func(c *systemd.Config) { c.ResyncInterval = time.Hour })
	install(t, m, "behind.service", "[Service]\nExecStart=/bin/sleep 600\n")
	if err := m.Start(t.Context(), "behind.service"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitUnit(t, m, "behind.service", active)
	settle(m)
	ch := m.Notify(t.Context())
	if _, err := um.Systemctl(t.Context(), "stop", "behind.service"); err != nil {
		t.Fatal(err)
	}
	if !notified(ch, 5*time.Second) {
		t.Fatal("no notification after systemctl --user stop")
	}
	list, err := m.Units(t.Context())
	if err != nil || len(list) != 1 || list[0].ActiveState != core.ActiveInactive || list[0].SubState != "dead" {
		t.Fatalf("Units after systemctl stop = %+v, %v; want behind.service inactive/dead", list, err)
	}
}

func TestInstallEnablesAtRuntimeAndRemoveUndoes(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, nil)
	install(t, m, "wanted.service", "[Service]\nExecStart=/bin/sleep 600\n\n[Install]\nWantedBy=default.target\n")
	links := filepath.Join(um.RuntimeDir(), "systemd", "user")
	wants := filepath.Join(links, "default.target.wants", "wanted.service")
	for _, p := range []string{filepath.Join(links, "wanted.service"), wants} {
		if _, err := os.Lstat(p); err != nil {
			t.Fatalf("after WriteUnit: %v", err)
		}
	}
	if out, _ := um.Systemctl(t.Context(), "is-enabled", "wanted.service"); strings.TrimSpace(string(out)) != "enabled-runtime" {
		t.Fatalf("is-enabled = %q, want enabled-runtime", out)
	}
	if err := m.RemoveUnit(t.Context(), "wanted.service"); err != nil {
		t.Fatalf("RemoveUnit: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(m.Config().UnitDir, "wanted.service")); !os.IsNotExist(err) {
		t.Errorf("unit file still there after RemoveUnit (%v)", err)
	}
	if err := m.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, p := range []string{filepath.Join(links, "wanted.service"), wants} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after RemoveUnit and Reload (%v)", p, err)
		}
	}
}

func TestLeftoverUnitsReportedOnOpen(t *testing.T) {
	um := sharedManager(t)
	first := open(t, um, nil)
	dir := first.Config().UnitDir
	install(t, first, "left.service", "[Service]\nExecStart=/bin/sleep 600\n")
	if err := first.Start(t.Context(), "left.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, first, "left.service", active)
	// A file fleet wrote but never linked (it crashed in between).
	unlinked := []byte("[Service]\nExecStart=/bin/true\n")
	if err := os.WriteFile(filepath.Join(dir, "unlinked.service"), unlinked, 0o644); err != nil {
		t.Fatal(err)
	}
	// Files that are not units are not fleet's.
	for _, junk := range []string{".fleet-123.tmp", "README"} {
		if err := os.WriteFile(filepath.Join(dir, junk), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := open(t, um, func(c *systemd.Config) { c.UnitDir = dir })
	list, err := second.Units(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "left.service" || list[1].Name != "unlinked.service" {
		t.Fatalf("Units after reopening = %+v, want left.service and unlinked.service", list)
	}
	// Open links every file again, so the one left unlinked loads.
	if !list[0].Running() || list[1].LoadState != core.LoadLoaded || list[1].Hash != core.HashBytes(unlinked) {
		t.Fatalf("Units after reopening = %+v; want left running, unlinked relinked and loaded, with its hash", list)
	}
	if err := second.Start(t.Context(), "unlinked.service"); err != nil {
		t.Errorf("Start of the relinked unit: %v", err)
	}
}

func TestTemplateFilesDoNotBreakListing(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, nil)
	if err := m.WriteUnit(t.Context(), "t@.service", []byte("[Service]\nExecStart=/bin/sleep 600\n")); err == nil {
		t.Error("WriteUnit of a template succeeded, want an error")
	}
	install(t, m, "ok.service", "[Service]\nExecStart=/bin/sleep 600\n")
	// A template left in fleet's directory by hand.
	if err := os.WriteFile(filepath.Join(m.Config().UnitDir, "t@.service"), []byte("[Service]\nExecStart=/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := m.Units(t.Context())
	if err != nil {
		t.Fatalf("Units with a template file present: %v", err)
	}
	if len(list) != 2 || list[0].Name != "ok.service" || list[0].LoadState != core.LoadLoaded || list[1].LoadState != core.LoadNotFound {
		t.Errorf("Units = %+v, want ok.service loaded and t@.service not-found", list)
	}
	if err := m.RemoveUnit(t.Context(), "t@.service"); err != nil {
		t.Errorf("RemoveUnit of the template file: %v", err)
	}
}

func TestRemoveUnitDoesNotWaitLongForAStop(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, func(c *systemd.Config) { c.StopWait = 200 * time.Millisecond })
	// A Type=simple unit is active as soon as it forked, before sh has run the
	// trap: the unit says when SIGTERM is ignored by creating a file. An
	// ignored signal stays ignored across exec.
	ready := filepath.Join(t.TempDir(), "ready")
	install(t, m, "slow.service", fmt.Sprintf("[Service]\nExecStart=/bin/sh -c 'trap \"\" TERM; touch %s; exec sleep 600'\nTimeoutStopSec=1\n", ready))
	if err := m.Start(t.Context(), "slow.service"); err != nil {
		t.Fatal(err)
	}
	waitFile(t, ready)
	start := time.Now()
	err := m.RemoveUnit(t.Context(), "slow.service")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("RemoveUnit took %v with StopWait 200ms", took)
	}
	if err == nil {
		t.Fatal("RemoveUnit returned nil while the stop was still running")
	}
	if ok, _ := fileExists(m.Config().UnitDir, "slow.service"); !ok {
		t.Fatal("RemoveUnit removed the file of a unit still stopping")
	}
	// Once the stop job ends, a later call finishes the removal.
	deadline := time.Now().Add(10 * time.Second)
	for m.RemoveUnit(t.Context(), "slow.service") != nil {
		if time.Now().After(deadline) {
			t.Fatal("RemoveUnit never finished after the stop job ended")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func fileExists(dir, name string) (bool, error) {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil, err
}

func TestRemovedUnitsUnlinkedAtNextReload(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, nil)
	links := filepath.Join(um.RuntimeDir(), "systemd", "user")
	for _, n := range []string{"gone-a.service", "gone-b.service", "back.service"} {
		install(t, m, n, "[Service]\nExecStart=/bin/sleep 600\n")
	}
	for _, n := range []string{"gone-a.service", "gone-b.service", "back.service"} {
		if err := m.RemoveUnit(t.Context(), n); err != nil {
			t.Fatalf("RemoveUnit(%s): %v", n, err)
		}
	}
	// Written again before the Reload: its link must survive it.
	install(t, m, "back.service", "[Service]\nExecStart=/bin/sleep 601\n")
	if err := m.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, n := range []string{"gone-a.service", "gone-b.service"} {
		if _, err := os.Lstat(filepath.Join(links, n)); !os.IsNotExist(err) {
			t.Errorf("link of %s still there after Reload (%v)", n, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(links, "back.service")); err != nil {
		t.Errorf("link of back.service, written again, was removed: %v", err)
	}
}

func TestFailedRewriteKeepsThePreviousFile(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, nil)
	old := []byte("[Service]\nExecStart=/bin/sleep 600\n")
	install(t, m, "keep.service", string(old))
	if err := m.Start(t.Context(), "keep.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, m, "keep.service", active)
	// Enabling fails: an alias of another unit type is refused by systemd.
	bad := []byte("[Service]\nExecStart=/bin/sleep 601\n\n[Install]\nAlias=x.socket\n")
	if err := m.WriteUnit(t.Context(), "keep.service", bad); err == nil {
		t.Fatal("WriteUnit with an unenableable [Install] succeeded")
	}
	list, err := m.Units(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Hash != core.HashBytes(old) || !list[0].Running() {
		t.Errorf("after a failed rewrite: %+v; want keep.service still listed with its old contents, running", list)
	}
}
