package e2e

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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// beaconUnit is the global unit the cluster starts with: it runs on every
// machine from the start, and on a machine that comes back.
const (
	beaconUnit = "e2e-beacon.service"
	beaconFile = "[Unit]\nDescription=e2e beacon on every machine\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\n"
)

// cluster is the running test cluster, as fleet-cluster recorded it.
type cluster struct {
	binaries
	dir      string
	cgroup   string // the cluster's root in one cgroup hierarchy
	machines []machine
}

// binaries are the programs the tests build and run.
type binaries struct {
	fleetd, fleetctl, tool string
}

// machine is one machine of the cluster; proc a process fleet-cluster started.
type (
	machine = clusterstate.Machine
	proc    = clusterstate.Proc
)

func (c *cluster) readState() (*clusterstate.State, error) {
	s, err := clusterstate.Load(c.dir)
	if err != nil {
		return nil, fmt.Errorf("cluster state: %w", err)
	}
	return s, nil
}

// load reads the machines and the cgroup root of the cluster just started.
func (c *cluster) load() error {
	s, err := c.readState()
	if err != nil {
		return err
	}
	if s.UnitManager != "systemd" || len(s.Cgroups) == 0 || len(s.Machines) != machines {
		return fmt.Errorf("cluster runs %s with cgroups %v and %d machines; want systemd, cgroups, %d machines", s.UnitManager, s.Cgroups, len(s.Machines), machines)
	}
	c.machines, c.cgroup = s.Machines, s.Cgroups[0]
	for _, g := range s.Cgroups {
		if !strings.Contains(g, "/systemd/") {
			c.cgroup = g // prefer cgroup2 where the host has both
		}
	}
	return nil
}

// down stops the cluster and checks that nothing of it is left.
func (c *cluster) down() error {
	s, err := c.readState()
	if err != nil {
		return err
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

// live returns the live recorded process of role on machine m, if any.
func (c *cluster) live(role, m string) (proc, bool) {
	s, err := c.readState()
	if err != nil {
		return proc{}, false
	}
	for _, p := range s.Procs {
		if p.Role == role && p.Name == m && p.Alive() {
			return p, true
		}
	}
	return proc{}, false
}

// reviveAll restarts the manager and fleetd of any machine where one is dead.
func (c *cluster) reviveAll() error {
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
		"-systemd", systemdBin, "-agent-ttl", agentTTL.String(), "-wait", "30s").CombinedOutput()
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

// fleetctl runs the real fleetctl in dir against machine m's API (through
// FLEETCTL_ENDPOINT) and returns its stdout; stderr goes into the error.
func (c *cluster) fleetctlOn(m machine, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.fleetctl, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FLEETCTL_ENDPOINT=unix://"+m.Socket)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("fleetctl %s: %w\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// ctl runs fleetctl against the first machine and fails the test on error.
func (c *cluster) ctl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := c.fleetctlOn(c.machines[0], dir, args...)
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

// unitRow is one row of fleetctl list-units --output=json.
type unitRow struct {
	Unit    string `json:"unit"`
	Machine string `json:"machine"`
	Active  string `json:"active"`
	Sub     string `json:"sub"`
}

// unitFiles lists the cluster's units by name.
func (c *cluster) unitFiles() (map[string]unitFile, error) {
	out, err := c.fleetctlOn(c.machines[0], "", "list-unit-files", "--output=json", "--fields=unit,dstate,state,tmachine")
	if err != nil {
		return nil, err
	}
	var rows []unitFile
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("list-unit-files: %w: %s", err, out)
	}
	files := map[string]unitFile{}
	for _, r := range rows {
		r.TMachine, _, _ = strings.Cut(r.TMachine, "/")
		files[r.Unit] = r
	}
	return files, nil
}

// unitRows lists the unit states the machines report.
func (c *cluster) unitRows() ([]unitRow, error) {
	out, err := c.fleetctlOn(c.machines[0], "", "list-units", "--output=json", "--fields=unit,machine,active,sub")
	if err != nil {
		return nil, err
	}
	var rows []unitRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("list-units: %w: %s", err, out)
	}
	for i := range rows {
		rows[i].Machine, _, _ = strings.Cut(rows[i].Machine, "/")
	}
	return rows, nil
}

// sdUnit is what a machine's systemd manager says about a unit.
type sdUnit struct {
	Load, Active, Sub string
	MainPID           int
}

// systemd asks machine m's manager about unit with systemctl --user.
func (c *cluster) systemd(m machine, unit string) (sdUnit, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "systemctl", "--user", "show", "-p", "LoadState,ActiveState,SubState,MainPID", unit)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+m.Runtime)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return sdUnit{}, fmt.Errorf("systemctl --user show %s on %s: %w: %s", unit, m.Name, err, out)
	}
	var u sdUnit
	for line := range strings.Lines(string(out)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "LoadState":
			u.Load = v
		case "ActiveState":
			u.Active = v
		case "SubState":
			u.Sub = v
		case "MainPID":
			u.MainPID, _ = strconv.Atoi(v)
		}
	}
	return u, nil
}

// pids lists the processes in unit's cgroup under machine m's manager.
func (c *cluster) pids(m machine, unit string) ([]int, error) {
	var pids []int
	root := filepath.Join(c.cgroup, m.Name, "manager")
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !e.IsDir() || e.Name() != unit {
			return err
		}
		data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
			return nil
		}
		if err != nil {
			return err
		}
		for f := range strings.FieldsSeq(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			pids = append(pids, pid)
		}
		return nil
	})
	slices.Sort(pids)
	return pids, err
}

// runsOn returns the machines where unit has processes in its cgroup.
func (c *cluster) runsOn(unit string) ([]string, error) {
	var on []string
	for _, m := range c.machines {
		pids, err := c.pids(m, unit)
		if err != nil {
			return nil, err
		}
		if len(pids) > 0 {
			on = append(on, m.Name)
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

// waitLimit bounds the waits for what fleet and systemd do without a stated
// bound; generous, since the host may be loaded.
const waitLimit = 30 * time.Second

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

// cleanup destroys every unit this test's directory names (and their
// instances) and waits until none runs anywhere.
func (c *cluster) cleanup(t *testing.T, dir string) {
	t.Helper()
	if err := c.reviveAll(); err != nil {
		t.Error(err)
		return
	}
	files, err := c.unitFiles()
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

// service returns a unit file running cmd, with extra [X-Fleet] lines.
func service(cmd string, fleet ...string) string {
	s := "[Unit]\nDescription=e2e test unit\n\n[Service]\nExecStart=" + cmd + "\n"
	if len(fleet) > 0 {
		s += "\n[X-Fleet]\n" + strings.Join(fleet, "\n") + "\n"
	}
	return s
}

// activeOn waits until unit is launched, runs (a process in its cgroup) on
// exactly one machine, and that machine's systemd reports it active/running
// with that process as its MainPID; it returns the machine and the MainPID.
func (c *cluster) activeOn(t *testing.T, unit string) (machine, int) {
	t.Helper()
	var got machine
	var pid int
	eventually(t, waitLimit, unit+" running on one machine", func() error {
		var err error
		got, pid, err = c.runningOnce(unit)
		return err
	})
	return got, pid
}

// runningOnce checks that unit runs on exactly one machine, the one fleet
// places it on, as a launched unit reported active/running by that
// machine's systemd.
func (c *cluster) runningOnce(unit string) (machine, int, error) {
	on, err := c.runsOn(unit)
	if err != nil || len(on) != 1 {
		return machine{}, 0, errors.Join(err, fmt.Errorf("%s has processes on %v: %w", unit, on, errNotYet))
	}
	var m machine
	for _, x := range c.machines {
		if x.Name == on[0] {
			m = x
		}
	}
	files, err := c.unitFiles()
	if err != nil {
		return m, 0, err
	}
	f := files[unit]
	if f.State != "launched" || f.DState != "launched" || c.byID(f.TMachine) != m.Name {
		return m, 0, fmt.Errorf("%s runs on %s, fleet says %+v: %w", unit, m.Name, f, errNotYet)
	}
	sd, err := c.systemd(m, unit)
	if err != nil {
		return m, 0, err
	}
	pids, err := c.pids(m, unit)
	if err != nil {
		return m, 0, err
	}
	if sd.Active != "active" || sd.Sub != "running" || !slices.Contains(pids, sd.MainPID) {
		return m, 0, fmt.Errorf("%s on %s: systemd says %+v, cgroup holds %v: %w", unit, m.Name, sd, pids, errNotYet)
	}
	return m, sd.MainPID, nil
}
