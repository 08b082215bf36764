package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// realOptions configures the benchmarks on real systemd user managers.
type realOptions struct {
	bin, dir    string
	machines    int
	sizes       []int
	agentTTL    time.Duration
	idle        time.Duration
	log         io.Writer
	pollEvery   time.Duration
	activeLimit time.Duration
}

// systemctl runs `systemctl --user` against machine m's manager.
func systemctl(ctx context.Context, m machine, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "systemctl", append([]string{"--user"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+m.Runtime)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("systemctl --user %s on %s: %w: %s", strings.Join(args, " "), m.Name, err, out)
	}
	return string(out), nil
}

// listedUnit is one entry of systemd's ListUnitsByPatterns.
type listedUnit struct {
	Name, Description, Load, Active, Sub, Following string
	Path                                            dbus.ObjectPath
	JobID                                           uint32
	JobType                                         string
	JobPath                                         dbus.ObjectPath
}

// bus returns a D-Bus connection to machine m's manager, dialled once.
func (c *cluster) bus(ctx context.Context, m machine) (*dbus.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.buses[m.Name]; ok {
		return conn, nil
	}
	socket := filepath.Join(m.Runtime, "systemd", "private")
	conn, err := dbus.Dial("unix:path="+dbus.EscapeBusAddressValue(socket), dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("manager of %s: %w", m.Name, err)
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("manager of %s: %w", m.Name, err)
	}
	if c.buses == nil {
		c.buses = map[string]*dbus.Conn{}
	}
	c.buses[m.Name] = conn
	return conn, nil
}

// activeUnits lists the units matching pattern that m's manager reports
// active, asking it over D-Bus (a systemctl process per poll would compete
// with what is measured).
func (c *cluster) activeUnits(ctx context.Context, m machine, pattern string) ([]string, error) {
	conn, err := c.bus(ctx, m)
	if err != nil {
		return nil, err
	}
	var units []listedUnit
	obj := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	if err := obj.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.ListUnitsByPatterns", 0, []string{"active"}, []string{pattern}).Store(&units); err != nil {
		return nil, fmt.Errorf("manager of %s: %w", m.Name, err)
	}
	names := make([]string, len(units))
	for i, u := range units {
		names[i] = u.Name
	}
	return names, nil
}

// activeOn returns, for each machine, the units matching pattern it reports
// active, asking the managers in parallel.
func (c *cluster) activeOn(ctx context.Context, ms []machine, pattern string) (map[string][]string, error) {
	out := map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, m := range ms {
		wg.Go(func() {
			names, err := c.activeUnits(ctx, m, pattern)
			mu.Lock()
			defer mu.Unlock()
			out[m.Name] = names
			errs = append(errs, err)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// countActive counts the active units matching pattern over the machines.
func (c *cluster) countActive(ctx context.Context, ms []machine, pattern string) (int, error) {
	on, err := c.activeOn(ctx, ms, pattern)
	n := 0
	for _, names := range on {
		n += len(names)
	}
	return n, err
}

// instances names template's instances 1..n.
func instances(template string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s@%d.service", template, i+1)
	}
	return out
}

// floorStart starts n instances of template directly on the managers, spread
// round-robin, and waits until all are active: systemd's own floor.
func floorStart(ctx context.Context, o realOptions, c *cluster, ms []machine, template string, n int) (time.Duration, string, error) {
	for _, m := range ms {
		dir := filepath.Join(m.Runtime, "systemd", "user")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, "", err
		}
		if err := os.WriteFile(filepath.Join(dir, template+"@.service"), []byte(unitText), 0o644); err != nil {
			return 0, "", err
		}
		if _, err := systemctl(ctx, m, "daemon-reload"); err != nil {
			return 0, "", err
		}
	}
	per := make([][]string, len(ms))
	for i, u := range instances(template, n) {
		per[i%len(ms)] = append(per[i%len(ms)], u)
	}
	cpu0 := c.cpuByProc()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Go(func() {
			_, errs[i] = systemctl(ctx, m, append([]string{"start"}, per[i]...)...)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, "", err
	}
	err := poll(ctx, o.activeLimit, o.pollEvery, "floor units active", func() (bool, error) {
		got, err := c.countActive(ctx, ms, template+"@*")
		return got == n, err
	})
	took := time.Since(start)
	return took, c.cpuSpent(cpu0), err
}

// floorStop stops and removes the floor's units.
func floorStop(ctx context.Context, ms []machine, template string) error {
	for _, m := range ms {
		if _, err := systemctl(ctx, m, "stop", template+"@*"); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(m.Runtime, "systemd", "user", template+"@.service")); err != nil {
			return err
		}
		if _, err := systemctl(ctx, m, "daemon-reload"); err != nil {
			return err
		}
	}
	return nil
}

// fleetctl runs the cluster's fleetctl against m1 in dir.
func (c *cluster) fleetctl(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "fleetctl"), append([]string{"--endpoint", "unix://" + c.Machines[0].Socket}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("fleetctl %s: %w: %s", args[0], err, out)
	}
	return nil
}

// passFamilies are the counters whose growth a start reports beside its CPU.
var passFamilies = []string{"fleet_api_requests_total", "fleet_engine_passes_total", "fleet_agent_passes_total", "fleet_agent_tasks_total"}

// perUnit formats the etcd requests between two counts per unit: the total
// and by method.
func perUnit(before, after map[string]float64, n int) string {
	var methods []string
	for m, v := range after {
		if d := v - before[m]; d > 0 {
			methods = append(methods, fmt.Sprintf("%s %.2f", strings.TrimPrefix(m, "/etcdserverpb."), d/float64(n)))
		}
	}
	slices.Sort(methods)
	return fmt.Sprintf("%.2f (%s)", (sum(after)-sum(before))/float64(n), strings.Join(methods, ", "))
}

// fleetStart writes template's file in a directory, runs `fleetctl start
// --no-block` of its n instances there and waits until systemd reports all of
// them active. It returns the time taken and the etcd requests per unit.
func fleetStart(ctx context.Context, o realOptions, c *cluster, template string, n int) (time.Duration, string, string, error) {
	dir := filepath.Join(o.dir+"-units", template)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, template+"@.service"), []byte(unitText), 0o644); err != nil {
		return 0, "", "", err
	}
	before, err := etcdRequests(ctx, c.Machines)
	if err != nil {
		return 0, "", "", err
	}
	passes0, err := counters(ctx, c.Machines, passFamilies...)
	if err != nil {
		return 0, "", "", err
	}
	cpu0 := c.cpuByProc()
	start := time.Now()
	if err := c.fleetctl(ctx, dir, append([]string{"start", "--no-block"}, instances(template, n)...)...); err != nil {
		return 0, "", "", err
	}
	err = poll(ctx, o.activeLimit, o.pollEvery, "fleet units active", func() (bool, error) {
		got, err := c.countActive(ctx, c.Machines, template+"@*")
		return got == n, err
	})
	took := time.Since(start)
	cpu := c.cpuSpent(cpu0)
	if err != nil {
		return took, "", "", err
	}
	after, err := etcdRequests(ctx, c.Machines)
	if err != nil {
		return took, "", "", err
	}
	passes, err := counters(ctx, c.Machines, passFamilies...)
	if err != nil {
		return took, "", "", err
	}
	for _, f := range passFamilies {
		cpu += fmt.Sprintf("; %s %.0f", strings.TrimPrefix(f, "fleet_"), passes[f]-passes0[f])
	}
	return took, perUnit(before, after, n), cpu, nil
}

// idle measures, with the units running, the etcd requests of every fleetd
// by method and each fleetd's CPU seconds over window.
func idle(ctx context.Context, c *cluster, ms []machine, window time.Duration) (map[string]float64, []float64, error) {
	var fleetds []proc
	for _, m := range ms {
		p, ok := c.procOf("fleetd", m.Name)
		if !ok {
			return nil, nil, fmt.Errorf("no fleetd recorded for %s", m.Name)
		}
		fleetds = append(fleetds, p)
	}
	cpu0 := make([]float64, len(fleetds))
	for i, p := range fleetds {
		v, err := cpuSeconds(p)
		if err != nil {
			return nil, nil, err
		}
		cpu0[i] = v
	}
	req0, err := etcdRequests(ctx, ms)
	if err != nil {
		return nil, nil, err
	}
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-time.After(window):
	}
	req1, err := etcdRequests(ctx, ms)
	if err != nil {
		return nil, nil, err
	}
	cpu := make([]float64, len(fleetds))
	for i, p := range fleetds {
		v, err := cpuSeconds(p)
		if err != nil {
			return nil, nil, err
		}
		cpu[i] = v - cpu0[i]
	}
	d := map[string]float64{}
	for k, v := range req1 {
		if v-req0[k] > 0 {
			d[k] = v - req0[k]
		}
	}
	return d, cpu, nil
}

// killMachine kills machine m's fleetd and systemd manager.
func (c *cluster) killMachine(m machine) error {
	var errs []error
	for _, role := range []string{"fleetd", "manager"} {
		p, ok := c.procOf(role, m.Name)
		if !ok {
			errs = append(errs, fmt.Errorf("no %s recorded for %s", role, m.Name))
			continue
		}
		errs = append(errs, kill(p))
	}
	return errors.Join(errs...)
}

// failover kills victim and measures until every unit matching pattern that
// was active on it is active on another machine. It returns the latency and
// how many units moved.
func failover(ctx context.Context, o realOptions, c *cluster, victim machine, pattern string) (time.Duration, int, error) {
	var rest []machine
	for _, m := range c.Machines {
		if m.Name != victim.Name {
			rest = append(rest, m)
		}
	}
	moving, err := c.activeUnits(ctx, victim, pattern)
	if err != nil {
		return 0, 0, err
	}
	if len(moving) == 0 {
		return 0, 0, fmt.Errorf("no unit active on %s", victim.Name)
	}
	start := time.Now()
	if err := c.killMachine(victim); err != nil {
		return 0, 0, err
	}
	c.Machines = rest
	err = poll(ctx, 3*o.agentTTL+30*time.Second, o.pollEvery, "moved units active", func() (bool, error) {
		on, err := c.activeOn(ctx, rest, pattern)
		var all []string
		for _, names := range on {
			all = append(all, names...)
		}
		for _, u := range moving {
			if !slices.Contains(all, u) {
				return false, err
			}
		}
		return true, err
	})
	return time.Since(start), len(moving), err
}
