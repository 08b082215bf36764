package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterprobe"
	"github.com/fleet-rebuild/fleet/internal/clusterstate"
	"github.com/fleet-rebuild/fleet/internal/procfs"
)

// cluster is the running test cluster, as fleet-cluster recorded it.
type cluster struct {
	fleetd, fleetctl, tool string
	dir                    string
	beaconLog              string // start log of beaconUnit
	cgroup                 string // the cluster's root in one cgroup hierarchy
	machines               []machine
	hub                    string // the hub network namespace, with up -netns
}

type (
	machine = clusterstate.Machine
	proc    = clusterstate.Proc
)

// errNotYet is what a polled condition returns when it does not hold yet.
var errNotYet = errors.New("not yet")

// waitLimit bounds every wait for what fleet and systemd do without a stated
// bound; generous, since the host may be loaded.
const waitLimit = 45 * time.Second

// load reads the machines and the cgroup root of the cluster just started.
func (c *cluster) load() error {
	s, err := clusterstate.Load(c.dir)
	if err != nil {
		return err
	}
	if s.UnitManager != "systemd" || len(s.Cgroups) == 0 || len(s.Machines) != machines {
		return fmt.Errorf("cluster runs %s with cgroups %v and %d machines; want systemd, cgroups, %d machines", s.UnitManager, s.Cgroups, len(s.Machines), machines)
	}
	c.machines, c.cgroup = s.Machines, s.Cgroups[0]
	if len(s.Netns) > 0 {
		c.hub = s.Netns[0]
	}
	for _, g := range s.Cgroups {
		if !strings.Contains(g, "/systemd/") {
			c.cgroup = g // prefer cgroup2 where the host has both
		}
	}
	return nil
}

// down stops the cluster and checks that nothing of it is left.
func (c *cluster) down() error {
	s, err := clusterstate.Load(c.dir)
	if err != nil {
		return err
	}
	for _, p := range s.Procs {
		if p.Alive() {
			_ = syscall.Kill(p.PID, syscall.SIGCONT) // a test that failed may have left one frozen
		}
	}
	out, err := exec.Command(c.tool, "down", "-dir", c.dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fleet-cluster down: %w\n%s", err, out)
	}
	var errs []error
	for _, p := range s.Procs {
		if p.Alive() {
			errs = append(errs, fmt.Errorf("%s %s (pid %d) survived down", p.Role, p.Name, p.PID))
		}
	}
	for _, d := range append([]string{c.dir}, s.Cgroups...) {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s left after down (%v)", d, err))
		}
	}
	return errors.Join(errs...)
}

// live returns the live recorded process of role on machine name, if any.
func (c *cluster) live(role, name string) (proc, bool) {
	s, err := clusterstate.Load(c.dir)
	if err != nil {
		return proc{}, false
	}
	for _, p := range s.Procs {
		if p.Role == role && p.Name == name && p.Alive() {
			return p, true
		}
	}
	return proc{}, false
}

// reviveAll heals every partition, thaws every recorded process and
// restarts the manager and fleetd of any machine where one is dead.
func (c *cluster) reviveAll() error {
	s, err := clusterstate.Load(c.dir)
	if err != nil {
		return err
	}
	for _, m := range c.machines {
		if err := c.setLink(m, "up"); err != nil {
			return err
		}
	}
	for _, p := range s.Procs {
		if p.Alive() {
			if err := syscall.Kill(p.PID, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("thaw %s %s: %w", p.Role, p.Name, err)
			}
		}
	}
	for _, m := range c.machines {
		_, mgr := c.live("manager", m.Name)
		_, fd := c.live("fleetd", m.Name)
		if !mgr || !fd {
			if err := c.restart(m.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// restart starts machine name's dead manager and fleetd again and waits until
// they serve.
func (c *cluster) restart(name string) error {
	out, err := exec.Command(c.tool, "restart", "-dir", c.dir, "-machine", name, "-fleetd", c.fleetd,
		"-systemd", systemdBin, "-agent-ttl", agentTTL.String(), "-wait", "45s").CombinedOutput()
	if err != nil {
		return fmt.Errorf("fleet-cluster restart %s: %w\n%s", name, err, out)
	}
	return nil
}

func (c *cluster) machine(t *testing.T, name string) machine {
	t.Helper()
	for _, m := range c.machines {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no machine %s", name)
	return machine{}
}

// byID returns the name of the machine with that ID, or the ID itself.
func (c *cluster) byID(id string) string {
	for _, m := range c.machines {
		if m.ID == id {
			return m.Name
		}
	}
	return id
}

// fleetctlOn runs the real fleetctl in dir against machine m's API and
// returns its stdout; stderr goes into the error.
func (c *cluster) fleetctlOn(m machine, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.fleetctl, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FLEETCTL_ENDPOINT=unix://"+m.Socket)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("fleetctl %s on %s: %w\nstdout: %s\nstderr: %s", strings.Join(args, " "), m.Name, err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// ctl runs fleetctl against machine m and fails the test on error.
func (c *cluster) ctl(t *testing.T, m machine, dir string, args ...string) string {
	t.Helper()
	out, err := c.fleetctlOn(m, dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unitFile is one row of fleetctl list-unit-files --output=json.
type unitFile struct {
	Unit     string `json:"unit"`
	DState   string `json:"dstate"`
	State    string `json:"state"`
	TMachine string `json:"tmachine"`
}

// unitFiles lists the cluster's units by name, asking machine m.
func (c *cluster) unitFiles(m machine) (map[string]unitFile, error) {
	out, err := c.fleetctlOn(m, "", "list-unit-files", "--output=json", "--fields=unit,dstate,state,tmachine")
	if err != nil {
		return nil, err
	}
	var rows []unitFile
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("list-unit-files: %w: %s", err, out)
	}
	files := map[string]unitFile{}
	for _, r := range rows {
		id, _, _ := strings.Cut(r.TMachine, "/")
		r.TMachine = c.byID(id)
		files[r.Unit] = r
	}
	return files, nil
}

// runsOn returns, by machine name, the processes in unit's cgroup on every
// machine where it has any.
func (c *cluster) runsOn(unit string) (map[string][]int, error) {
	on := map[string][]int{}
	for _, m := range c.machines {
		pids, err := clusterprobe.UnitPIDs(c.cgroup, m.Name, unit)
		if err != nil {
			return nil, err
		}
		if len(pids) > 0 {
			on[m.Name] = pids
		}
	}
	return on, nil
}

// eventually polls cond until it returns nil, and fails the test with the
// last error when limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// service returns a unit file running cmd, with extra [X-Fleet] lines.
func service(cmd string, fleet ...string) string {
	s := "[Unit]\nDescription=chaos test unit\n\n[Service]\nExecStart=" + cmd + "\n"
	if len(fleet) > 0 {
		s += "\n[X-Fleet]\n" + strings.Join(fleet, "\n") + "\n"
	}
	return s
}

// loggedService is a unit file whose every start is logged in log.
func loggedService(log string, fleet ...string) string {
	return service(clusterprobe.StartCommand(log), fleet...)
}

// unitDir writes unit files into a fresh directory for fleetctl to read, and
// destroys the units at the end of the test, waiting until nothing of them
// runs on any machine.
func (c *cluster) unitDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c.cleanup(t, dir) })
	return dir
}

// cleanup brings every machine back, destroys every unit named by the
// test's directory (and their instances) and waits until none runs anywhere.
func (c *cluster) cleanup(t *testing.T, dir string) {
	t.Helper()
	if err := c.reviveAll(); err != nil {
		t.Error(err)
		return
	}
	files, err := c.unitFiles(c.machines[0])
	if err != nil {
		t.Error(err)
		return
	}
	local, err := os.ReadDir(dir)
	if err != nil {
		t.Error(err)
		return
	}
	var names []string
	for name := range files {
		for _, f := range local {
			prefix, tmpl := strings.CutSuffix(f.Name(), "@.service")
			if name == f.Name() || tmpl && strings.HasPrefix(name, prefix+"@") {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	if _, err := c.fleetctlOn(c.machines[0], dir, append([]string{"destroy"}, names...)...); err != nil {
		t.Error(err)
		return
	}
	deadline := time.Now().Add(waitLimit)
	for _, n := range names {
		for {
			on, err := c.runsOn(n)
			if err != nil {
				t.Error(err)
				return
			}
			if len(on) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s still runs on %v after destroy", n, on)
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
}

// setLink sets machine m's link in the hub namespace "up" or "down" (a
// partition of m from etcd and every other machine); without network
// namespaces it does nothing.
func (c *cluster) setLink(m machine, state string) error {
	if c.hub == "" || m.Link == "" {
		return nil
	}
	out, err := exec.Command("ip", "-n", c.hub, "link", "set", m.Link, state).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -n %s link set %s %s: %w: %s", c.hub, m.Link, state, err, out)
	}
	return nil
}

// signal sends sig to machine m's live fleetd and returns it.
func (c *cluster) signal(t *testing.T, m machine, sig syscall.Signal) proc {
	t.Helper()
	p, ok := c.live("fleetd", m.Name)
	if !ok {
		t.Fatalf("%s's fleetd does not run", m.Name)
	}
	if err := syscall.Kill(p.PID, sig); err != nil {
		t.Fatalf("%v to %s's fleetd (pid %d): %v", sig, m.Name, p.PID, err)
	}
	return p
}

// freeze stops machine m's fleetd with SIGSTOP (thawed at the end of the
// test whatever happens) and returns when it did.
func (c *cluster) freeze(t *testing.T, m machine) time.Time {
	t.Helper()
	p := c.signal(t, m, syscall.SIGSTOP)
	t.Cleanup(func() { _ = syscall.Kill(p.PID, syscall.SIGCONT) })
	eventually(t, waitLimit, m.Name+"'s fleetd stopped", func() error {
		s, err := procfs.ReadStat(p.PID)
		if err != nil || s.State != 'T' {
			return errors.Join(err, fmt.Errorf("state %c: %w", s.State, errNotYet))
		}
		return nil
	})
	return time.Now()
}

// leader returns the machine whose fleetd reports fleet_engine_leader 1,
// asking only the machines in ask.
func (c *cluster) leader(ask []machine) (machine, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var found []machine
	for _, m := range ask {
		s, err := clusterprobe.Metrics(ctx, m.Socket)
		if err != nil {
			return machine{}, err
		}
		if s["fleet_engine_leader"] == 1 {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return machine{}, fmt.Errorf("%d engine leaders among %d machines: %w", len(found), len(ask), errNotYet)
	}
	return found[0], nil
}

// barrier starts a unit pinned to machine m and waits until it runs there:
// m's fleetd has then caught up with the cluster.
func (c *cluster) barrier(t *testing.T, dir string, m machine, unit string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, unit), []byte(service("/bin/sleep infinity", "MachineMetadata=name="+m.Name)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ctl(t, c.machines[0], dir, "start", unit)
	eventually(t, waitLimit, unit+" running on "+m.Name, func() error {
		on, err := c.runsOn(unit)
		if err != nil {
			return err
		}
		if len(on) != 1 || on[m.Name] == nil {
			return fmt.Errorf("%s runs on %v: %w", unit, on, errNotYet)
		}
		return nil
	})
}
