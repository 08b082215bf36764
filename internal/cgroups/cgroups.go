// Package cgroups finds, empties and removes the cgroup trees that the test
// harnesses and the local cluster give each systemd manager they start: on
// the cgroup2 hierarchy and, on hybrid hosts, the v1 name=systemd one.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Hierarchy is one cgroup hierarchy systemd uses: the cgroup2 one, or the v1
// name=systemd one (hybrid layout).
type Hierarchy struct {
	Mount string // where it is mounted, e.g. /sys/fs/cgroup/unified
	Self  string // this process's own cgroup in it, as a directory under Mount
}

// Own returns the hierarchies systemd uses (cgroup2 if mounted, and
// name=systemd if mounted), each with this process's own cgroup in it.
func Own() ([]Hierarchy, error) {
	own, err := ownPaths()
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	var out []Hierarchy
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 {
			continue
		}
		var key string
		switch {
		case tail[0] == "cgroup2":
		case tail[0] == "cgroup" && hasOption(tail[2], "name=systemd"):
			key = "name=systemd"
		default:
			continue
		}
		p, ok := own[key]
		if !ok {
			continue
		}
		out = append(out, Hierarchy{Mount: fields[4], Self: filepath.Join(fields[4], strings.TrimPrefix(p, fields[3]))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("cgroups: no cgroup2 or name=systemd cgroup hierarchy is mounted")
	}
	return out, nil
}

// ownPaths maps a hierarchy key ("" for cgroup2, "name=systemd") to this
// process's cgroup path in it.
func ownPaths() (map[string]string, error) {
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

// PIDs lists the processes anywhere in the trees under dirs, sorted.
func PIDs(dirs []string) ([]int, error) {
	seen := map[int]bool{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
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

// Kill sends SIGKILL to every process in the trees under dirs until they are
// empty, for at most timeout. Only processes inside the trees are signalled.
func Kill(dirs []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := PIDs(dirs)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: processes %v still in %v after %v", pids, dirs, timeout)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("cgroups: kill %d: %w", pid, err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Remove removes the trees under dirs, deepest directories first. A cgroup
// may stay busy for a moment after its last process died; that is retried for
// a short, bounded time.
func Remove(dirs []string) error {
	var all []string
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
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
	return fmt.Errorf("cgroups: remove %s: %w", dir, err)
}
