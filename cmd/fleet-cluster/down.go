package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fleet-rebuild/fleet/internal/cgroups"
	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// Grace periods of down: a fleetd drains its units first (stops them and
// leaves the cluster), which needs etcd; without etcd it cannot, and is
// killed sooner.
const (
	fleetdGrace      = 30 * time.Second
	fleetdGraceNoKV  = 3 * time.Second
	managerGrace     = 10 * time.Second
	etcdGrace        = 10 * time.Second
	killWait         = 5 * time.Second
	cgroupKillBudget = 5 * time.Second
)

// down stops everything dir's state records, in order: the fleetds that do not
// host etcd, the one that does, the systemd managers, the etcd members; then
// kills what is left in the cluster's cgroups, removes the cgroups and the
// directory. Each process is signalled only while it is still the process
// recorded (same PID and start time). Missing processes, cgroups and files
// are fine: down can run after a crash of anything, and again.
func down(dir string, out io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	s, err := clusterstate.Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(out, "no cluster recorded in %s: nothing to stop\n", dir)
		return nil
	}
	if err != nil {
		return err
	}
	etcdHost := map[string]bool{}
	for _, m := range s.Machines {
		etcdHost[m.Name] = m.EtcdHost
	}
	grace := fleetdGraceNoKV
	if etcdAnswers(s) {
		grace = fleetdGrace
	}
	var errs []error
	// etcd members stop one after the other: a leader stopping hands its
	// leadership to a live peer, which takes seconds when every peer is
	// stopping too.
	stages := []struct {
		grace      time.Duration
		sequential bool
		pick       func(clusterstate.Proc) bool
	}{
		{grace, false, func(p clusterstate.Proc) bool { return p.Role == "fleetd" && !etcdHost[p.Name] }},
		{grace, false, func(p clusterstate.Proc) bool { return p.Role == "fleetd" && etcdHost[p.Name] }},
		{managerGrace, false, func(p clusterstate.Proc) bool { return p.Role == "manager" }},
		{etcdGrace, true, func(p clusterstate.Proc) bool { return p.Role == "etcd" }},
	}
	for _, st := range stages {
		var picked []clusterstate.Proc
		for _, p := range s.Procs {
			if st.pick(p) {
				picked = append(picked, p)
			}
		}
		if st.sequential {
			for _, p := range picked {
				errs = append(errs, stop(p, st.grace, out))
			}
			continue
		}
		errs = append(errs, stopAll(picked, st.grace, out))
	}
	if len(s.Cgroups) > 0 {
		errs = append(errs, cgroups.Kill(s.Cgroups, cgroupKillBudget), cgroups.Remove(s.Cgroups))
	}
	errs = append(errs, removeNetns(s.Netns))
	for _, p := range s.Procs {
		if p.Alive() {
			errs = append(errs, fmt.Errorf("%s %s (pid %d) still runs", p.Role, p.Name, p.PID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster-down: %w; %s kept for a second try", err, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cluster-down: %w", err)
	}
	fmt.Fprintf(out, "stopped the cluster in %s and removed it\n", dir)
	return nil
}

// etcdAnswers reports whether any of the cluster's etcd endpoints is healthy.
func etcdAnswers(s *clusterstate.State) bool {
	for _, u := range s.EtcdURLs {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := healthy(ctx, hubPath(s), u)
		cancel()
		if err == nil {
			return true
		}
	}
	return false
}

// stopAll stops the processes in parallel.
func stopAll(procs []clusterstate.Proc, grace time.Duration, out io.Writer) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = stop(p, grace, out) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stop sends SIGTERM to p, and SIGKILL after grace, if p is still the process
// recorded. The signals go through a pidfd taken before the check, so a PID
// reused after the check is never signalled.
func stop(p clusterstate.Proc, grace time.Duration, out io.Writer) error {
	proc, err := os.FindProcess(p.PID)
	if err != nil || !p.Alive() {
		return nil
	}
	defer proc.Release()
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
		return fmt.Errorf("stop %s %s (pid %d): %w", p.Role, p.Name, p.PID, err)
	}
	if gone(p, grace) {
		return nil
	}
	fmt.Fprintf(out, "%s %s (pid %d) did not stop within %v: killing it\n", p.Role, p.Name, p.PID, grace)
	if err := proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s %s (pid %d): %w", p.Role, p.Name, p.PID, err)
	}
	if !gone(p, killWait) {
		return fmt.Errorf("%s %s (pid %d) survived SIGKILL for %v", p.Role, p.Name, p.PID, killWait)
	}
	return nil
}

// gone waits up to limit for p to end.
func gone(p clusterstate.Proc, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for p.Alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}
