package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/internal/cgroups"
	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// The binaries the tests run: fleetd, and this tool for the etcd members.
var fleetdBin, fleetctlBin, selfBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fleet-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fleetdBin, fleetctlBin, selfBin = filepath.Join(dir, "fleetd"), filepath.Join(dir, "fleetctl"), filepath.Join(dir, "fleet-cluster")
	for bin, pkg := range map[string]string{fleetdBin: "../fleetd", fleetctlBin: "../fleetctl", selfBin: "."} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg+":", err)
			return 1
		}
	}
	return m.Run()
}

// clusterDir is a short fresh directory: the managers' socket paths must fit.
func clusterDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "c")
}

// TestUpDown brings up two machines on real systemd where it can run (always
// under CI=true, where a missing systemd fails instead of falling back),
// checks that both are listed and every example unit runs where fleet says,
// crashes and restarts the fleetd hosting the embedded etcd, crashes another
// fleetd, and checks that down stops every recorded process and removes the
// cgroups and files.
func TestUpDown(t *testing.T) {
	mgr := managerAuto
	if os.Getenv("CI") == "true" {
		mgr = managerSystemd
	}
	s := upCluster(t, upOptions{Machines: 2, UnitManager: mgr})
	if s.UnitManager == managerFake {
		t.Logf("real systemd cannot run here (%s): checked with the fake unit manager", s.Why)
	} else {
		t.Logf("on real systemd: %d machines, cgroups %v", len(s.Machines), s.Cgroups)
	}
	checkCluster(t, s)
	if s.UnitManager == managerSystemd {
		checkMachines(t, s)
	}
	s = restartEtcdHost(t, s)
	checkCluster(t, s)
	crash(t, s, "fleetd", "m2")
	downAndCheck(t, s)
}

// restartEtcdHost crashes m1's fleetd, which embeds the cluster's etcd, and
// restarts it: refused, naming the port, while another program holds its
// peer port; then back with the same fleet.conf (data_dir, client and peer
// URLs), recorded, alive and healthy. It returns the state recorded then.
func restartEtcdHost(t *testing.T, s *clusterstate.State) *clusterstate.State {
	t.Helper()
	m := s.Machines[0]
	if !m.EtcdHost {
		t.Fatalf("%s does not host the embedded etcd", m.Name)
	}
	confFile := filepath.Join(m.Dir, "fleet.conf")
	conf, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	peer := ""
	for line := range strings.Lines(string(conf)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "embedded_etcd_peer_url="); ok {
			peer = v
		}
	}
	if peer == "" {
		t.Fatalf("%s: no embedded_etcd_peer_url:\n%s", confFile, conf)
	}
	crash(t, s, "fleetd", m.Name)
	opts := upOptions{Dir: s.Dir, Fleetd: fleetdBin, Systemd: "/lib/systemd/systemd", Wait: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// The killed fleetd may hold its ports a moment after it is seen gone.
	var squatter net.Listener
	if err := waitFor(ctx, 10*time.Second, "the peer port free", nil, func() (err error) {
		squatter, err = net.Listen("tcp", strings.TrimPrefix(peer, "http://"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	refused := opts
	refused.Wait = time.Second
	err = restartMachine(ctx, refused, m.Name)
	squatter.Close()
	if err == nil || !strings.Contains(err.Error(), "embedded_etcd_peer_url "+peer) {
		t.Errorf("restart with the peer port taken: %v, want an error naming embedded_etcd_peer_url %s", err, peer)
	}
	t.Logf("restart with the peer port taken: %v", err)
	start := time.Now()
	if err := restartMachine(ctx, opts, m.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s's fleetd and its etcd healthy again %v after the restart began", m.Name, time.Since(start).Round(time.Millisecond))
	if again, err := os.ReadFile(confFile); err != nil || !bytes.Equal(again, conf) {
		t.Errorf("%s after the restart (%v):\n%s\nwas:\n%s", confFile, err, again, conf)
	}
	now, err := clusterstate.Load(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if p := find(t, now, "fleetd", m.Name); !p.Alive() {
		t.Errorf("%s's restarted fleetd (pid %d) not alive", m.Name, p.PID)
	}
	if err := healthy(ctx, "", s.EtcdURLs[0]); err != nil {
		t.Errorf("the embedded etcd is not healthy at %s after the restart: %v", s.EtcdURLs[0], err)
	}
	return now
}

// TestUpDownSeparateEtcd runs the machines on a separate three-member etcd,
// with the fake unit manager and a -fleetd-option, restarts a crashed fleetd
// (its fleet.conf keeps the option), crashes one etcd member, restarts it with
// restart -etcd, crashes it again and runs down.
func TestUpDownSeparateEtcd(t *testing.T) {
	const opt = "agent_fence_grace=20s"
	s := upCluster(t, upOptions{Machines: 2, Etcd: 3, UnitManager: managerFake, FleetdOptions: []string{opt}})
	if len(s.EtcdURLs) != 3 || len(s.Cgroups) != 0 {
		t.Fatalf("etcd URLs %v, cgroups %v: want 3 members and no cgroup", s.EtcdURLs, s.Cgroups)
	}
	hasOption := func(m clusterstate.Machine) {
		t.Helper()
		conf, err := os.ReadFile(filepath.Join(m.Dir, "fleet.conf"))
		if err != nil || !strings.Contains(string(conf), "etcd_servers="+strings.Join(s.EtcdURLs, ",")+"\n") || !strings.HasSuffix(string(conf), "\n"+opt+"\n") {
			t.Errorf("%s's fleet.conf does not list every etcd member and end with %s (%v):\n%s", m.Name, opt, err, conf)
		}
	}
	for _, m := range s.Machines {
		hasOption(m)
	}
	checkCluster(t, s)
	crash(t, s, "fleetd", "m2")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := restartMachine(ctx, upOptions{Dir: s.Dir, Fleetd: fleetdBin, Wait: 30 * time.Second}, "m2"); err != nil {
		t.Fatal(err)
	}
	hasOption(s.Machines[1])
	waitCluster(t, s)
	crash(t, s, "etcd", "e2")
	waitCluster(t, s)
	s = restartMember(t, s, "e2")
	waitCluster(t, s)
	crash(t, s, "etcd", "e2")
	downAndCheck(t, s)
}

// restartMember runs fleet-cluster restart -etcd for a dead member and
// checks that it is recorded again, alive, healthy on its URL (so part of
// a quorum: the cluster it left, not a new one), and that restarting a live
// member or an unknown one does nothing.
func restartMember(t *testing.T, s *clusterstate.State, name string) *clusterstate.State {
	t.Helper()
	restart := func(args ...string) error {
		out, err := exec.Command(selfBin, append([]string{"restart", "-dir", s.Dir, "-wait", "30s"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := restart("-etcd", name); err != nil {
		t.Fatalf("restart -etcd %s: %v", name, err)
	}
	now, err := clusterstate.Load(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var alive []clusterstate.Proc
	for _, p := range now.Procs {
		if p.Role == "etcd" && p.Name == name && p.Alive() {
			alive = append(alive, p)
		}
	}
	if len(alive) != 1 {
		t.Fatalf("after restart -etcd %s: %d live %s recorded, want 1: %+v", name, len(alive), name, now.Procs)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "e"))
	if err != nil || n < 1 || n > len(now.EtcdURLs) {
		t.Fatalf("no member %s among %v", name, now.EtcdURLs)
	}
	url := now.EtcdURLs[n-1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := healthy(ctx, hubPath(now), url); err != nil {
		t.Errorf("%s restarted but not healthy at %s: %v", name, url, err)
	}
	if !slices.Equal(now.EtcdURLs, s.EtcdURLs) || !slices.Equal(now.EtcdPeerURLs, s.EtcdPeerURLs) {
		t.Errorf("etcd URLs after the restart %v %v, were %v %v", now.EtcdURLs, now.EtcdPeerURLs, s.EtcdURLs, s.EtcdPeerURLs)
	}
	if err := restart("-etcd", name); err != nil {
		t.Errorf("restart -etcd %s while it runs: %v, want nothing done", name, err)
	}
	if again, err := clusterstate.Load(s.Dir); err != nil || len(again.Procs) != len(now.Procs) {
		t.Errorf("restart -etcd %s while it runs recorded a process (%v)", name, err)
	}
	for _, bad := range [][]string{{"-etcd", "e9"}, {"-etcd", name, "-machine", "m1"}, {}} {
		if err := restart(bad...); err == nil {
			t.Errorf("restart %v: no error", bad)
		}
	}
	return now
}

// upCluster starts a cluster with opts completed by the test's defaults and
// returns its recorded state; down runs at the end of the test in any case.
func upCluster(t *testing.T, opts upOptions) *clusterstate.State {
	t.Helper()
	opts.Dir = clusterDir(t)
	opts.Fleetd, opts.Fleetctl, opts.Self = fleetdBin, fleetctlBin, selfBin
	opts.Examples, opts.Instances = "../../examples/units", 3
	opts.Systemd, opts.Wait = "/lib/systemd/systemd", 30*time.Second
	var out bytes.Buffer
	opts.Out = &out
	t.Cleanup(func() {
		if err := down(opts.Dir, io.Discard); err != nil {
			t.Errorf("down at cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	start := time.Now()
	if err := up(ctx, opts); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	t.Logf("up took %v", time.Since(start).Round(time.Millisecond))
	s, err := clusterstate.Load(opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "export FLEETCTL_ENDPOINT=unix://" + s.Machines[0].Socket + "\n"; !strings.Contains(out.String(), want) {
		t.Errorf("up printed no %q:\n%s", want, out.String())
	}
	return s
}

// checkCluster checks through the API that every machine is listed and every
// example unit is launched and reported active: a global unit on every
// machine, any other on the machine it is placed on.
func checkCluster(t *testing.T, s *clusterstate.State) {
	t.Helper()
	if err := clusterProblems(s); err != nil {
		t.Error(err)
	}
}

// waitCluster waits, for at most 30 s, until clusterProblems finds none: after
// a fleetd restarted, its agent starts its units again in its new fake
// manager, and may publish them inactive on the way (seen as late as a
// member crash right after).
func waitCluster(t *testing.T, s *clusterstate.State) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := clusterProblems(s)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterProblems is what checkCluster finds wrong: a machine not listed, an
// example unit not launched and active (a global one on every machine).
func clusterProblems(s *clusterstate.State) error {
	ctx := context.Background()
	c, err := newClient("unix://" + s.Machines[0].Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ms, err := c.Machines(ctx)
	if err != nil {
		return err
	}
	var errs []error
	listed := map[string]bool{}
	for _, m := range ms {
		listed[m.ID] = true
	}
	for _, m := range s.Machines {
		if !listed[m.ID] {
			errs = append(errs, fmt.Errorf("machine %s (%s) not listed: %+v", m.Name, m.ID, ms))
		}
	}
	units, err := readExamples("../../examples/units", 3)
	if err != nil {
		return err
	}
	states, err := c.UnitStates(ctx, api.StateFilter{})
	if err != nil {
		return err
	}
	active := map[string]bool{}
	for _, st := range states {
		active[st.Name+"@"+st.MachineID] = st.SystemdActiveState == "active"
	}
	for _, u := range units {
		if u.global() {
			for _, m := range s.Machines {
				if !active[u.Name+"@"+m.ID] {
					errs = append(errs, fmt.Errorf("global %s not active on %s", u.Name, m.Name))
				}
			}
			continue
		}
		got, err := c.Unit(ctx, u.Name)
		if err != nil || got.CurrentState != "launched" || !active[u.Name+"@"+got.MachineID] {
			errs = append(errs, fmt.Errorf("%s: %+v (%v), active on its machine %t; want launched and active", u.Name, got, err, active[u.Name+"@"+got.MachineID]))
		}
	}
	return errors.Join(errs...)
}

// checkMachines checks what really runs: each manager sees its own machine
// ID and /run, and every unit fleet reports active on a machine has a process
// in that machine's cgroup.
func checkMachines(t *testing.T, s *clusterstate.State) {
	t.Helper()
	c, err := newClient("unix://" + s.Machines[0].Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	states, err := c.UnitStates(context.Background(), api.StateFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Machines {
		p := find(t, s, "manager", m.Name)
		id, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/machine-id", p.PID))
		if err != nil || strings.TrimSpace(string(id)) != m.ID {
			t.Errorf("%s's manager sees machine ID %q (%v), want %s", m.Name, id, err, m.ID)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/run/systemd/system", p.PID)); err != nil {
			t.Errorf("%s has no /run of its own: %v", m.Name, err)
		}
		for _, st := range states {
			if st.MachineID == m.ID && st.SystemdActiveState == "active" {
				if pids := unitPIDs(t, s.Cgroups[0], m.Name, st.Name); len(pids) == 0 {
					t.Errorf("%s reported active on %s, but no process of it runs in %s's cgroup", st.Name, m.Name, m.Name)
				}
			}
		}
	}
}

// unitPIDs lists the processes in unit's cgroup under machine's manager.
func unitPIDs(t *testing.T, root, machine, unit string) []int {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(filepath.Join(root, machine, "manager"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() && e.Name() == unit {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pids, err := cgroups.PIDs(dirs)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// crash kills one recorded process at once, as a crash would.
func crash(t *testing.T, s *clusterstate.State, role, name string) {
	t.Helper()
	p := find(t, s, role, name)
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !gone(p, 5*time.Second) {
		t.Fatalf("%s %s survived SIGKILL", role, name)
	}
}

// downAndCheck runs down twice and checks that nothing it recorded is left.
func downAndCheck(t *testing.T, s *clusterstate.State) {
	t.Helper()
	start := time.Now()
	if err := down(s.Dir, io.Discard); err != nil {
		t.Fatalf("down: %v", err)
	}
	t.Logf("down took %v", time.Since(start).Round(time.Millisecond))
	var out bytes.Buffer
	if err := down(s.Dir, &out); err != nil || !strings.Contains(out.String(), "nothing to stop") {
		t.Errorf("second down: %v, %q; want nothing to stop", err, out.String())
	}
	for _, p := range s.Procs {
		if p.Alive() {
			t.Errorf("%s %s (pid %d) still runs after down", p.Role, p.Name, p.PID)
		}
	}
	for _, d := range append([]string{s.Dir}, s.Cgroups...) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left after down (%v)", d, err)
		}
	}
}

// find returns the process of role on name recorded last.
func find(t *testing.T, s *clusterstate.State, role, name string) clusterstate.Proc {
	t.Helper()
	for _, p := range slices.Backward(s.Procs) {
		if p.Role == role && p.Name == name {
			return p
		}
	}
	t.Fatalf("no %s %s recorded", role, name)
	return clusterstate.Proc{}
}

// TestUpDownNetns runs each machine in its own network namespace, linked to
// a hub namespace holding a one-member etcd (up -netns, fake unit manager),
// restarts that member after a crash (in the hub again), and checks that
// down deletes every namespace it made.
func TestUpDownNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but not root: network namespaces need root")
		}
		t.Skip("not root: network namespaces need root")
	}
	s := upCluster(t, upOptions{Machines: 2, Etcd: 1, Netns: true, UnitManager: managerFake})
	if len(s.Netns) != 3 || !strings.HasPrefix(s.EtcdURLs[0], "http://"+netnsSubnet+"1:") {
		t.Fatalf("namespaces %v, etcd %v: want a hub and two machines, etcd in the hub", s.Netns, s.EtcdURLs)
	}
	for _, m := range s.Machines {
		if m.Netns == "" || m.Link == "" {
			t.Errorf("%s has no namespace or link recorded: %+v", m.Name, m)
		}
	}
	checkCluster(t, s)
	crash(t, s, "etcd", "e1")
	s = restartMember(t, s, "e1")
	checkCluster(t, s)
	downAndCheck(t, s)
	for _, n := range s.Netns {
		if _, err := os.Stat(netnsPath(n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left after down (%v)", n, err)
		}
	}
}

func TestNetnsNeedsSeparateEtcd(t *testing.T) {
	o := upOptions{Machines: 1, Fleetd: "fleetd", Fleetctl: "fleetctl", UnitManager: managerFake, Netns: true, Dir: t.TempDir()}
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "netns") {
		t.Errorf("validate with -netns and embedded etcd: %v, want an error naming netns", err)
	}
}

func TestRestartClockAheadWholeSeconds(t *testing.T) {
	for _, ahead := range []string{"1500ms", "-1h"} {
		err := runRestart(context.Background(), []string{"-dir", t.TempDir(), "-machine", "m2", "-fleetd", "fleetd", "-clock-ahead", ahead}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "clock-ahead") {
			t.Errorf("restart -clock-ahead %s: %v, want an error naming clock-ahead", ahead, err)
		}
	}
}

// TestFleetdOptionChecked: -fleetd-option takes a fleetd option's key=value
// on one line, never one fleet-cluster sets itself, and restart reads back
// exactly what up wrote.
func TestFleetdOptionChecked(t *testing.T) {
	for kv, want := range map[string]string{
		"agent_fence_grace":                      "want key=value",
		"bogus_option=1":                         `"bogus_option" is not a fleetd option`,
		"agent_ttl=5s":                           "sets agent_ttl itself",
		"verbosity=1\nunit_manager=fake":         "newline",
		"public_ip=" + strings.Repeat("1", 4096): "longer than 4096 bytes",
	} {
		var o fleetdOptions
		if err := o.Set(kv); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-fleetd-option %.40q: %v, want an error saying %q", kv, err, want)
		}
	}
	var o fleetdOptions
	for _, kv := range []string{"agent_fence_grace=2s", "verbosity=1"} {
		if err := o.Set(kv); err != nil {
			t.Errorf("-fleetd-option %s: %v", kv, err)
		}
	}
	conf := filepath.Join(t.TempDir(), "fleet.conf")
	lines := withFleetdOptions([]string{"data_dir=/x", "agent_ttl=5s"}, o)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kept, err := keptFleetdOptions(conf)
	if err != nil || strings.Join(kept, " ") != "agent_fence_grace=2s verbosity=1" {
		t.Errorf("kept options %q, %v; want agent_fence_grace=2s verbosity=1", kept, err)
	}
	if err := os.WriteFile(conf, []byte(optionsMarker+"\nagent_ttl=1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keptFleetdOptions(conf); err == nil || !strings.Contains(err.Error(), conf) {
		t.Errorf("a fleet.conf with a forbidden option after the marker: %v, want an error naming it", err)
	}
}
