package systemdtest

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

// hierarchy is one cgroup hierarchy systemd uses: the cgroup2 one, or the v1
// "name=systemd" one (hybrid layout).
type hierarchy struct {
	mount string // where the hierarchy is mounted, e.g. /sys/fs/cgroup/unified
	self  string // this process's cgroup in it, as a directory under mount
}

// hierarchies finds the hierarchies systemd needs from /proc/self/mountinfo
// and /proc/self/cgroup: cgroup2 if mounted, and name=systemd if mounted.
func hierarchies() ([]hierarchy, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []hierarchy
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 {
			continue
		}
		root, mnt := fields[3], fields[4]
		var key string
		switch {
		case tail[0] == "cgroup2":
			key = ""
		case tail[0] == "cgroup" && hasOption(tail[2], "name=systemd"):
			key = "name=systemd"
		default:
			continue
		}
		p, ok := own[key]
		if !ok {
			continue
		}
		rel := strings.TrimPrefix(p, root)
		out = append(out, hierarchy{mount: mnt, self: filepath.Join(mnt, rel)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup2 or name=systemd cgroup hierarchy is mounted")
	}
	return out, nil
}

// ownCgroups maps a hierarchy key ("" for cgroup2, "name=systemd") to this
// process's cgroup path in it.
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for line := range strings.Lines(string(data)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
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

// makeCgroups creates a cgroup named name beside this process's own cgroup in
// every hierarchy, and returns the directories and the path as /proc/PID/cgroup
// shows it in the first hierarchy.
func makeCgroups(name string) (dirs []string, path string, err error) {
	hs, err := hierarchies()
	if err != nil {
		return nil, "", err
	}
	for i, h := range hs {
		d := filepath.Join(h.self, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return dirs, "", errors.Join(fmt.Errorf("create cgroup: %w", err), removeCgroups(dirs))
		}
		dirs = append(dirs, d)
		if i == 0 {
			path = "/" + strings.TrimPrefix(strings.TrimPrefix(d, h.mount), "/")
		}
	}
	return dirs, path, nil
}

// killCgroups sends SIGKILL to every process in the cgroup trees until they are
// empty, for at most timeout. Only processes inside the trees are signalled.
func killCgroups(dirs []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := cgroupPIDs(dirs)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in cgroups %v after %v", pids, dirs, timeout)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill %d: %w", pid, err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cgroupPIDs lists the processes in the cgroup trees.
func cgroupPIDs(dirs []string) ([]int, error) {
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
			return nil, err
		}
	}
	pids := make([]int, 0, len(seen))
	for pid := range seen {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids, nil
}

// removeCgroups removes the cgroup trees, deepest directories first. A cgroup
// may stay busy for a moment after its last process died; that is retried for
// a short, bounded time.
func removeCgroups(dirs []string) error {
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
			return err
		}
	}
	sort.Slice(all, func(i, j int) bool { return strings.Count(all[i], "/") > strings.Count(all[j], "/") })
	var errs []error
	for _, d := range all {
		errs = append(errs, rmdirRetry(d))
	}
	return errors.Join(errs...)
}

func rmdirRetry(dir string) error {
	var err error
	for range 100 {
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
