package main

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoots returns, for every cgroup hierarchy systemd uses (cgroup2, and
// the v1 name=systemd one on hybrid hosts), a directory for this cluster
// beside the tool's own cgroup. The name is derived from the cluster
// directory, so two clusters never share one.
func cgroupRoots(clusterDir string) ([]string, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	h := fnv.New32a()
	h.Write([]byte(clusterDir))
	name := fmt.Sprintf("fleet-cluster-%08x", h.Sum32())
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options ... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, fstail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(fstail) < 3 {
			continue
		}
		key := ""
		switch {
		case fstail[0] == "cgroup2":
		case fstail[0] == "cgroup" && hasOption(fstail[2], "name=systemd"):
			key = "name=systemd"
		default:
			continue
		}
		self, ok := own[key]
		if !ok {
			continue
		}
		out = append(out, filepath.Join(fields[4], strings.TrimPrefix(self, fields[3]), name))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup2 or name=systemd cgroup hierarchy is mounted")
	}
	return out, nil
}

// ownCgroups maps "" (cgroup2) and "name=systemd" to this process's cgroup.
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(data)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		switch {
		case len(parts) != 3:
		case parts[0] == "0" && parts[1] == "":
			out[""] = parts[2]
		case hasOption(parts[1], "name=systemd"):
			out["name=systemd"] = parts[2]
		}
	}
	return out, nil
}

func hasOption(list, opt string) bool {
	for o := range strings.SplitSeq(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
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

// cgroupPIDs lists the processes anywhere in the trees under roots.
func cgroupPIDs(roots []string) ([]int, error) {
	seen := map[int]bool{}
	for _, r := range roots {
		err := filepath.WalkDir(r, func(p string, e fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return err
			}
			data, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
				return nil
			}
			if err != nil {
				return err
			}
			for f := range strings.FieldsSeq(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cgroups: %w", err)
		}
	}
	pids := make([]int, 0, len(seen))
	for pid := range seen {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids, nil
}

// killCgroups kills every process left in the trees under roots (the units the
// cluster's managers started, and anything they forked) until the trees are
// empty, for at most timeout.
func killCgroups(roots []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := cgroupPIDs(roots)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in cgroups %v after %v", pids, roots, timeout)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill %d: %w", pid, err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// removeCgroups removes the trees under roots, deepest directories first; a
// cgroup that is still busy for a moment after its last process died is
// retried for a bounded time.
func removeCgroups(roots []string) error {
	var all []string
	for _, r := range roots {
		err := filepath.WalkDir(r, func(p string, e fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return strings.Count(all[i], "/") > strings.Count(all[j], "/") })
	var errs []error
	for _, d := range all {
		errs = append(errs, rmdirRetry(d))
	}
	return errors.Join(errs...)
}

func rmdirRetry(dir string) error {
	var err error
	for range 200 {
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}
