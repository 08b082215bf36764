// Package clusterprobe observes a local cluster (fleet-cluster) from outside
// fleet: the processes in each unit's cgroup under a machine's systemd
// manager, a fleetd's Prometheus metrics over its API socket, and a start log
// that units append to. Tests judge fleet by these facts, not by its report.
package clusterprobe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// UnitPIDs lists the processes in unit's cgroup under machine's systemd
// manager, below the cluster's cgroup root (one hierarchy of
// clusterstate.State.Cgroups). A unit that does not run has none.
func UnitPIDs(root, machine, unit string) ([]int, error) {
	var pids []int
	base := filepath.Join(root, machine, "manager")
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !e.IsDir() || e.Name() != unit {
			return err
		}
		got, err := readProcs(filepath.Join(p, "cgroup.procs"))
		pids = append(pids, got...)
		return err
	})
	slices.Sort(pids)
	return pids, err
}

// TreePIDs lists every process in the cgroup dir and below it (for a
// machine's "manager" cgroup: the systemd manager and all its units).
func TreePIDs(dir string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || e.Name() != "cgroup.procs" {
			return err
		}
		got, err := readProcs(p)
		pids = append(pids, got...)
		return err
	})
	return pids, err
}

// readProcs reads a cgroup.procs file; a cgroup removed meanwhile has none.
func readProcs(file string) ([]int, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// Metrics reads the samples of the fleetd serving socket's /metrics, keyed
// by name and labels as exposed ("fleet_engine_leader",
// `fleet_engine_passes_total{kind="full",result="ok"}`).
func Metrics(ctx context.Context, socket string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fleetd/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics of %s: %s", socket, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics of %s: malformed line %q", socket, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: line %q: %w", socket, line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", socket, err)
	}
	return out, nil
}

// StartCommand is an ExecStart that appends "<unit> <machine ID>" to log at
// every start of the unit and then runs until stopped: the log counts the
// starts of each unit, and says where each happened.
func StartCommand(log string) string {
	return `/bin/sh -c 'echo "%n %m" >> ` + log + `; exec /bin/sleep infinity'`
}

// Starts reads a log written by StartCommand: for each unit, the IDs of the
// machines it started on, in order. A log not written yet has none.
func Starts(log string) (map[string][]string, error) {
	data, err := os.ReadFile(log)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("start log: %w", err)
	}
	out := map[string][]string{}
	for line := range strings.Lines(string(data)) {
		unit, machine, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			return nil, fmt.Errorf("start log %s: malformed line %q", log, line)
		}
		out[unit] = append(out[unit], machine)
	}
	return out, nil
}

// Services lists, by unit name, the processes of every service with any
// under machine's systemd manager: one walk of its cgroup subtree.
func Services(root, machine string) (map[string][]int, error) {
	out := map[string][]int{}
	err := filepath.WalkDir(filepath.Join(root, machine, "manager"), func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !e.IsDir() || !strings.HasSuffix(e.Name(), ".service") {
			return err
		}
		pids, err := readProcs(filepath.Join(p, "cgroup.procs"))
		if len(pids) > 0 {
			out[e.Name()] = append(out[e.Name()], pids...)
		}
		return err
	})
	return out, err
}
