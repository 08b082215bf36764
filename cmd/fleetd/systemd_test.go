package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/systemd/systemdtest"
)

// pidOf reads the PID a unit wrote, or 0.
func pidOf(file string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// alive reports whether pid is a running process (not a zombie).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// TestFleetdOnRealSystemd runs fleetd on its embedded etcd against a real
// systemd --user manager: a unit started through the API really runs; SIGHUP
// applies a good configuration and refuses a bad one; SIGTERM in detach mode
// leaves the unit running and a restarted fleetd adopts it without restarting
// it; SIGTERM in drain mode stops it.
func TestFleetdOnRealSystemd(t *testing.T) {
	um := systemdtest.New(t, systemdtest.Options{Name: "fleetd-test"})
	dir := newMachineDir(t, "m1")
	conf := filepath.Join(dir, "fleet.conf")
	writeConf := func(content string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	etcdURLs := []string{"-embedded_etcd_client_url", freeURL(t), "-embedded_etcd_peer_url", freeURL(t)}
	writeConf("systemd_user=true\nmetadata=role=web\n")
	env := []string{"XDG_RUNTIME_DIR=" + um.RuntimeDir()}
	p := startFleetd(t, dir, env, append([]string{"-config", conf}, etcdURLs...)...)
	ctx := context.Background()

	pidFile := filepath.Join(um.RuntimeDir(), "hello.pid")
	launch(t, p.client, "hello.service", unitOptions("Service",
		"ExecStart=/bin/sh -c 'echo $$$$ > "+pidFile+"; exec sleep 1000'"))
	p.waitFor(20*time.Second, "hello.service running", func() bool { return alive(pidOf(pidFile)) })
	pid := pidOf(pidFile)
	cgroup, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil || !strings.Contains(string(cgroup), um.Cgroup()) {
		t.Errorf("the unit's process is in cgroup %q, want under the manager's %s (%v)", cgroup, um.Cgroup(), err)
	}
	p.waitFor(20*time.Second, "hello.service launched", func() bool { return unit(p.client, "hello.service").CurrentState == "launched" })

	// SIGHUP: a good file changes the metadata; a bad one changes nothing.
	writeConf("systemd_user=true\nmetadata=role=db\nshutdown_mode=detach\n")
	p.signal(syscall.SIGHUP)
	p.waitFor(10*time.Second, "metadata reloaded", func() bool {
		ms, err := p.client.Machines(ctx)
		return err == nil && len(ms) == 1 && ms[0].Metadata["role"] == "db"
	})
	writeConf("systemd_user=true\nmetadata=role=cache\nshutdown_mode=detach\nagent_ttl=soon\n")
	p.signal(syscall.SIGHUP)
	p.waitFor(10*time.Second, "bad reload reported", func() bool { return strings.Contains(p.log.String(), "configuration not reloaded") })
	writeConf("systemd_user=false\nmetadata=role=cache\nshutdown_mode=detach\n")
	p.signal(syscall.SIGHUP)
	p.waitFor(10*time.Second, "restart-only change refused", func() bool { return strings.Contains(p.log.String(), "systemd_user cannot change while fleetd runs") })
	if ms, err := p.client.Machines(ctx); err != nil || ms[0].Metadata["role"] != "db" {
		t.Fatalf("metadata after refused reloads: %+v %v, want role=db still", ms, err)
	}
	writeConf("systemd_user=true\nmetadata=role=db\nshutdown_mode=detach\n")

	// Detach: the unit keeps running; a restarted fleetd adopts it.
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	if !alive(pid) {
		t.Fatal("hello.service stopped by a detaching fleetd")
	}
	p = startFleetd(t, dir, env, append([]string{"-config", conf}, etcdURLs...)...)
	p.waitFor(20*time.Second, "hello.service launched after the restart", func() bool { return unit(p.client, "hello.service").CurrentState == "launched" })
	if got := pidOf(pidFile); got != pid || !alive(pid) {
		t.Fatalf("after the restart hello.service runs as pid %d (alive %t), want the same pid %d: restarted", got, alive(got), pid)
	}
	if strings.Contains(p.log.String(), "agent: start hello.service") {
		t.Errorf("the restarted fleetd started hello.service again:\n%s", p.log.String())
	}

	// Drain: the unit is stopped before fleetd exits.
	p.signal(syscall.SIGTERM)
	writeConf("systemd_user=true\n")
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	if !alive(pid) {
		t.Fatal("the second stop was a detach too; want drain from the file's shutdown_mode")
	}
	p = startFleetd(t, dir, env, append([]string{"-config", conf}, etcdURLs...)...)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	eventually(t, 10*time.Second, "hello.service stopped by a draining fleetd", func() bool { return !alive(pid) })
}
