package systemdtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startSeveral starts n managers at once, each with its own machine ID.
func startSeveral(t *testing.T, n int) []*UserManager {
	t.Helper()
	if err := Check(""); err != nil {
		SkipOrFail(t, err)
	}
	ums := make([]*UserManager, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ums[i], errs[i] = Start(context.Background(), Options{
				Name:      fmt.Sprintf("m%d", i),
				MachineID: fmt.Sprintf("%032x", i+1),
			})
		})
	}
	wg.Wait()
	for i, um := range ums {
		if um != nil {
			t.Cleanup(func() {
				if err := um.Stop(); err != nil {
					t.Errorf("stop m%d: %v", i, err)
				}
			})
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start m%d: %v", i, err)
		}
	}
	return ums
}

func TestSeveralManagersAreSeparateMachines(t *testing.T) {
	ums := startSeveral(t, 3)
	for i, um := range ums {
		pid := um.PID()
		if pid == 0 {
			t.Fatalf("m%d: no PID", i)
		}
		id, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/machine-id", pid))
		if err != nil || strings.TrimSpace(string(id)) != um.MachineID() {
			t.Errorf("m%d sees machine ID %q (%v), want %q", i, id, err, um.MachineID())
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/run/systemd/system", pid)); err != nil {
			t.Errorf("m%d: no /run/systemd/system in its namespace: %v", i, err)
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil || !strings.Contains(string(cg), ":"+um.Cgroup()+"/") {
			t.Errorf("m%d: cgroup %q does not put it under %s (%v)", i, cg, um.Cgroup(), err)
		}
		if err := ping(context.Background(), um.Socket()); err != nil {
			t.Errorf("m%d does not answer: %v", i, err)
		}
	}
	if ums[0].Cgroup() == ums[1].Cgroup() || ums[0].Socket() == ums[1].Socket() {
		t.Fatalf("managers share a cgroup or socket: %s %s", ums[0].Cgroup(), ums[0].Socket())
	}
}

// TestSameUnitNameInTwoManagers checks the reason for per-manager cgroups:
// stopping a unit in one manager leaves the unit of the same name in another.
func TestSameUnitNameInTwoManagers(t *testing.T) {
	ums := startSeveral(t, 2)
	ctx := context.Background()
	for _, um := range ums {
		dir := filepath.Join(um.RuntimeDir(), "systemd", "user")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		unit := "[Service]\nExecStart=/bin/sleep 600\n"
		if err := os.WriteFile(filepath.Join(dir, "same.service"), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		mustSystemctl(t, um, "daemon-reload")
		mustSystemctl(t, um, "start", "same.service")
	}
	mustSystemctl(t, ums[0], "stop", "same.service")
	if out, _ := ums[1].Systemctl(ctx, "is-active", "same.service"); strings.TrimSpace(string(out)) != "active" {
		t.Fatalf("stopping same.service in m0 changed it in m1: %q", out)
	}
}

func TestStopCleansUp(t *testing.T) {
	if err := Check(""); err != nil {
		SkipOrFail(t, err)
	}
	um, err := Start(context.Background(), Options{Name: "cleanup"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(um.RuntimeDir(), "systemd", "user")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "busy.service"), []byte("[Service]\nExecStart=/bin/sleep 600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSystemctl(t, um, "daemon-reload")
	mustSystemctl(t, um, "start", "busy.service")
	pid := um.PID()
	cgroups := append([]string(nil), um.cgroups...)
	if err := um.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := um.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("manager %d still running", pid)
	}
	for _, d := range append(cgroups, um.RuntimeDir()) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", d, err)
		}
	}
}

func TestCrashAndRestart(t *testing.T) {
	um := New(t, Options{Name: "restart"})
	old := um.PID()
	if err := um.Crash(); err != nil {
		t.Fatalf("crash: %v", err)
	}
	if um.PID() != 0 {
		t.Fatal("PID after crash")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := um.Restart(ctx); err != nil {
		t.Fatalf("restart after crash: %v", err)
	}
	if pid := um.PID(); pid == 0 || pid == old {
		t.Fatalf("PID after restart = %d (was %d)", pid, old)
	}
	if err := um.Restart(ctx); err != nil {
		t.Fatalf("restart of a running manager: %v", err)
	}
	mustSystemctl(t, um, "show", "-p", "Version")
}

func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{{Name: "../x"}, {Name: "a b"}, {MachineID: "xyz"}, {MachineID: strings.Repeat("A", 32)}} {
		if _, err := Start(context.Background(), o); err == nil {
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}

func mustSystemctl(t *testing.T, um *UserManager, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := um.Systemctl(ctx, args...); err != nil {
		t.Fatal(err)
	}
}
