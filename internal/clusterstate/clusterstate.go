// Package clusterstate is the record a local cluster (fleet-cluster) keeps in
// its directory: the machines and every process it started, by PID and start
// time, so that other programs (fleet-cluster down, the benchmarks, the
// end-to-end tests) find and check them.
package clusterstate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fleet-rebuild/fleet/internal/procfs"
)

// File is the name of the record, in the cluster directory.
const File = "state.json"

// Proc identifies one process the tool started: its PID and its start time
// in clock ticks since boot (field 22 of /proc/PID/stat), which stays the same
// across exec and tells a reused PID apart.
type Proc struct {
	Role  string `json:"role"` // "manager", "fleetd" or "etcd"
	Name  string `json:"name"` // machine or member name
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Log   string `json:"log"`
}

// Machine is one machine of the cluster.
type Machine struct {
	Name      string `json:"name"`
	ID        string `json:"id"`
	Dir       string `json:"dir"`
	Socket    string `json:"socket"`          // fleetd's API socket
	Runtime   string `json:"runtime"`         // the manager's XDG_RUNTIME_DIR; empty with the fake manager
	EtcdHost  bool   `json:"etcd_host"`       // its fleetd embeds the cluster's etcd
	FleetdLog string `json:"fleetd_log"`      // where fleetd logs
	Netns     string `json:"netns,omitempty"` // its network namespace (ip netns name), with up -netns
	Link      string `json:"link,omitempty"`  // its link's end in the hub namespace: down = partitioned
}

// State is what a cluster directory records, written before and after every
// process start so that down finds everything even after a crash of up.
type State struct {
	Dir         string   `json:"dir"`
	UnitManager string   `json:"unit_manager"` // "systemd" or "fake"
	Why         string   `json:"why,omitempty"`
	Cgroups     []string `json:"cgroups,omitempty"` // the cluster's cgroup roots, one per hierarchy
	EtcdURLs    []string `json:"etcd_urls"`
	// EtcdPeerURLs are the peer URLs of a separate etcd's members, in the
	// order of EtcdURLs (member eN is the Nth): a dead member is restarted
	// on the same URLs.
	EtcdPeerURLs []string  `json:"etcd_peer_urls,omitempty"`
	Fleetctl     string    `json:"fleetctl"` // the fleetctl binary the cluster was started with
	Machines     []Machine `json:"machines"`
	// Netns lists the network namespaces made for the cluster (up -netns),
	// the hub holding etcd first; each is recorded before it is made.
	Netns []string `json:"netns,omitempty"`
	Procs []Proc   `json:"procs"`

	mu sync.Mutex
}

// Save writes the state atomically.
func (s *State) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp := filepath.Join(s.Dir, File+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, File)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Record adds a started process and saves the state at once.
func (s *State) Record(p Proc) error {
	s.mu.Lock()
	s.Procs = append(s.Procs, p)
	s.mu.Unlock()
	return s.Save()
}

// Load reads dir's state; an error matching fs.ErrNotExist if there is
// none.
func Load(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, File))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("state %s: %w", filepath.Join(dir, File), err)
	}
	s.Dir = dir
	return &s, nil
}

// StartTime returns pid's start time (see procfs.Stat).
func StartTime(pid int) (uint64, error) {
	s, err := procfs.ReadStat(pid)
	return s.StartTime, err
}

// Alive reports whether p is still the process recorded: it exists, is not a
// zombie and started at the recorded time. A PID reused by another process is
// not alive.
func (p Proc) Alive() bool {
	s, err := procfs.ReadStat(p.PID)
	return err == nil && s.StartTime == p.Start && !s.Exited()
}
