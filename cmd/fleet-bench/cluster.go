package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
	"github.com/fleet-rebuild/fleet/internal/procfs"
)

// machine is one machine of the cluster; proc one process fleet-cluster started.
type (
	machine = clusterstate.Machine
	proc    = clusterstate.Proc
)

// cluster is a running fleet-cluster, read from its state.json.
type cluster struct {
	*clusterstate.State

	bin   string // directory of the fleetd, fleetctl and fleet-cluster binaries
	mu    sync.Mutex
	buses map[string]*dbus.Conn // D-Bus connections to the managers, by machine
}

// upOptions are the fleet-cluster up flags the benchmarks vary.
type upOptions struct {
	machines    int
	etcd        int
	unitManager string
	agentTTL    string
}

// up starts a cluster with fleet-cluster in dir and reads its state. The
// examples it starts are one plain unit, warmup.service.
func up(ctx context.Context, bin, dir string, o upOptions, log io.Writer) (*cluster, error) {
	examples := dir + "-examples"
	if err := os.MkdirAll(examples, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(examples)
	if err := os.WriteFile(filepath.Join(examples, "warmup.service"), []byte(unitText), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "fleet-cluster"), "up", "-dir", dir,
		"-machines", strconv.Itoa(o.machines), "-etcd", strconv.Itoa(o.etcd), "-unit-manager", o.unitManager,
		"-agent-ttl", o.agentTTL, "-wait", "300s", "-examples", examples,
		"-fleetd", filepath.Join(bin, "fleetd"), "-fleetctl", filepath.Join(bin, "fleetctl"))
	cmd.Stdout, cmd.Stderr = log, log
	runErr := cmd.Run()
	s, err := clusterstate.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("fleet-cluster up: %v; state: %w", runErr, err)
	}
	c := &cluster{State: s, bin: bin}
	if runErr != nil {
		return c, fmt.Errorf("fleet-cluster up: %w", runErr)
	}
	return c, nil
}

// down stops the cluster with fleet-cluster down.
func (c *cluster) down(log io.Writer) error {
	for _, conn := range c.buses {
		conn.Close()
	}
	cmd := exec.Command(filepath.Join(c.bin, "fleet-cluster"), "down", "-dir", c.Dir)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fleet-cluster down: %w", err)
	}
	return nil
}

// procOf returns the recorded process of a role on a machine.
func (c *cluster) procOf(role, name string) (proc, bool) {
	for _, p := range c.Procs {
		if p.Role == role && p.Name == name {
			return p, true
		}
	}
	return proc{}, false
}

// kill sends SIGKILL to the recorded process, only while it is still the one
// recorded (same start time).
func kill(p proc) error {
	s, err := procfs.ReadStat(p.PID)
	if err != nil || s.StartTime != p.Start {
		return fmt.Errorf("%s %s (pid %d) is gone", p.Role, p.Name, p.PID)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s %s: %w", p.Role, p.Name, err)
	}
	return nil
}

// cpuSeconds is the user plus system CPU seconds the process has used.
func cpuSeconds(p proc) (float64, error) {
	s, err := procfs.ReadStat(p.PID)
	return s.CPUSeconds(), err
}

// metrics reads a fleetd's /metrics over its API socket: every sample, keyed
// by its name with labels as printed.
func metrics(ctx context.Context, socket string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fleetd/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", socket, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// requestsPrefix starts the samples of fleet_etcd_requests_total.
const requestsPrefix = "fleet_etcd_requests_total{"

// etcdRequests sums fleet_etcd_requests_total by method over the machines.
func etcdRequests(ctx context.Context, ms []machine) (map[string]float64, error) {
	out := map[string]float64{}
	for _, m := range ms {
		s, err := metrics(ctx, m.Socket)
		if err != nil {
			return nil, err
		}
		for k, v := range s {
			if rest, ok := strings.CutPrefix(k, requestsPrefix); ok {
				out[strings.Trim(strings.TrimPrefix(strings.TrimSuffix(rest, "}"), "method="), `"`)] += v
			}
		}
	}
	return out, nil
}

// counters sums, over the machines, every sample of the given metric
// families, by family.
func counters(ctx context.Context, ms []machine, families ...string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, m := range ms {
		s, err := metrics(ctx, m.Socket)
		if err != nil {
			return nil, err
		}
		for k, v := range s {
			for _, f := range families {
				if k == f || strings.HasPrefix(k, f+"{") {
					out[f] += v
				}
			}
		}
	}
	return out, nil
}

// sum adds the values of a by-method map.
func sum(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// leader returns the machine whose fleetd reports fleet_engine_leader 1.
func leader(ctx context.Context, ms []machine) (machine, error) {
	for _, m := range ms {
		s, err := metrics(ctx, m.Socket)
		if err != nil {
			return machine{}, err
		}
		if s["fleet_engine_leader"] == 1 {
			return m, nil
		}
	}
	return machine{}, fmt.Errorf("no engine leader among %d machines", len(ms))
}

// poll calls cond every interval until it reports done, failing after limit.
func poll(ctx context.Context, limit, interval time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := cond()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// unitText is the unit every benchmark starts: a process that runs until
// stopped.
const unitText = `[Unit]
Description=fleet benchmark unit

[Service]
ExecStart=/bin/sleep infinity
`

// cpuByProc returns the CPU seconds of every recorded process still running,
// and under "" this program's own.
func (c *cluster) cpuByProc() map[proc]float64 {
	out := map[proc]float64{}
	for _, p := range c.Procs {
		if s, err := procfs.ReadStat(p.PID); err == nil && s.StartTime == p.Start {
			out[p] = s.CPUSeconds()
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out[proc{Role: "fleet-bench"}] = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	return out
}

// cpuSpent sums by role the CPU seconds the processes used since before.
func (c *cluster) cpuSpent(before map[proc]float64) string {
	total, most := map[string]float64{}, map[string]float64{}
	n := map[string]int{}
	for p, v := range c.cpuByProc() {
		b, ok := before[p]
		if !ok {
			continue
		}
		total[p.Role] += v - b
		most[p.Role] = max(most[p.Role], v-b)
		n[p.Role]++
	}
	var parts []string
	for _, role := range []string{"fleetd", "manager", "etcd", "fleet-bench"} {
		switch {
		case n[role] == 0:
		case n[role] == 1:
			parts = append(parts, fmt.Sprintf("%s %.2f s", role, total[role]))
		default:
			parts = append(parts, fmt.Sprintf("%d %s %.2f s (max %.2f s)", n[role], role, total[role], most[role]))
		}
	}
	return strings.Join(parts, ", ")
}
