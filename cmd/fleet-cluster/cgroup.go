package main

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"

	"github.com/fleet-rebuild/fleet/internal/cgroups"
)

// cgroupRoots returns, for every cgroup hierarchy systemd uses (cgroup2, and
// the v1 name=systemd one on hybrid hosts), a directory for this cluster
// beside the tool's own cgroup. The name is derived from the cluster
// directory, so two clusters never share one.
func cgroupRoots(clusterDir string) ([]string, error) {
	hs, err := cgroups.Own()
	if err != nil {
		return nil, err
	}
	h := fnv.New32a()
	h.Write([]byte(clusterDir))
	name := fmt.Sprintf("fleet-cluster-%08x", h.Sum32())
	out := make([]string, len(hs))
	for i, hy := range hs {
		out[i] = filepath.Join(hy.Self, name)
	}
	return out, nil
}

// procsFiles creates sub (e.g. "m1/manager") under every root and returns the
// cgroup.procs files a process writes its PID to in order to join them.
func procsFiles(roots []string, sub string) ([]string, error) {
	var out []string
	for _, r := range roots {
		d := filepath.Join(r, sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out, nil
}
