package core

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// plan compares desired and actual units and returns the tasks, sorted, plus the
// earliest time a start back-off ends (zero if none).
func (a *Agent) plan(desired map[string]desiredUnit, actual []UnitStatus, now time.Time) ([]Task, time.Time) {
	have := make(map[string]UnitStatus, len(actual))
	names := make([]string, 0, len(actual)+len(desired))
	for _, s := range actual {
		have[s.Name] = s
		names = append(names, s.Name)
	}
	for n := range desired {
		if _, ok := have[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var tasks []Task
	var wake time.Time
	reload := a.reloadPending
	for _, n := range names {
		d, want := desired[n]
		s, ok := have[n]
		switch {
		case !want:
			tasks = append(tasks, Task{Kind: TaskRemove, Unit: n, Reason: "not scheduled here"})
			delete(a.starts, n)
			reload = true
			continue
		case !ok || s.Hash != d.hash:
			reason := "new"
			if ok {
				reason = "contents changed"
				tasks = append(tasks, Task{Kind: TaskRemove, Unit: n, Reason: reason})
			}
			tasks = append(tasks, Task{Kind: TaskWrite, Unit: n, Hash: d.hash, Reason: reason})
			delete(a.starts, n)
			reload = true
			s = UnitStatus{Name: n, LoadState: LoadLoaded, ActiveState: ActiveInactive}
		case s.LoadState == LoadNotFound:
			reload = true
			s.LoadState = LoadLoaded
		}
		switch {
		case d.target == Launched && !s.Running() && s.LoadState == LoadLoaded:
			if t, ok := a.startDue(n, d.rev, now); ok {
				tasks = append(tasks, Task{Kind: TaskStart, Unit: n, Reason: "target launched", Revision: d.rev})
			} else {
				wake = earliest(t, wake)
			}
		case d.target == Loaded && s.Running():
			tasks = append(tasks, Task{Kind: TaskStop, Unit: n, Reason: "target loaded"})
		}
	}
	if reload {
		tasks = append(tasks, Task{Kind: TaskReload})
	}
	sortTasks(tasks)
	return tasks, wake
}

// startDue reports whether unit n, not running, is to be started now for
// revision rev; if it is to be started later, it returns when. A revision this
// agent has not started yet starts at once; one it started is left alone (it
// ran and ended); one whose start failed is tried again after 1 s, 2 s, 4 s, …
// up to MaxStartBackoff.
func (a *Agent) startDue(n string, rev int64, now time.Time) (time.Time, bool) {
	r := a.starts[n]
	switch {
	case r == nil || r.rev != rev:
		return time.Time{}, true
	case r.started:
		return time.Time{}, false
	}
	delay := min(time.Second<<min(r.failures-1, 20), a.cfg.MaxStartBackoff)
	if next := r.last.Add(delay); now.Before(next) {
		return next, false
	}
	return time.Time{}, true
}

// noteStart records the outcome of a start of unit n for revision rev at now.
func (a *Agent) noteStart(n string, rev int64, err error, now time.Time) {
	r := a.starts[n]
	if r == nil || r.rev != rev {
		r = &startRecord{rev: rev}
		a.starts[n] = r
	}
	r.last = now
	if err == nil {
		r.started, r.failures = true, 0
		return
	}
	r.failures++
}

// run executes tasks in order. A failed task does not stop the others, but a unit
// whose remove or write failed is not started, and neither is a unit written
// since the last successful Reload when this pass's Reload fails (systemd would
// start its old definition). A failed Reload is tried again next pass.
func (a *Agent) run(ctx context.Context, tasks []Task, now time.Time) ([]Task, []TaskFailure) {
	var done []Task
	var failures []TaskFailure
	broken := map[string]bool{}
	for _, t := range tasks {
		if broken[t.Unit] && t.Unit != "" {
			continue
		}
		err := a.do(ctx, t)
		if t.Kind == TaskStart {
			a.noteStart(t.Unit, t.Revision, err, now)
		}
		switch {
		case err != nil && t.Kind == TaskReload:
			for u := range a.unreloaded {
				broken[u] = true
			}
		case err != nil:
		case t.Kind == TaskWrite:
			a.unreloaded[t.Unit] = true
			a.reloadPending = true
		case t.Kind == TaskRemove:
			a.reloadPending = true
		case t.Kind == TaskReload:
			clear(a.unreloaded)
			a.reloadPending = false
		}
		if err != nil {
			failures = append(failures, TaskFailure{Task: t, Err: err})
			broken[t.Unit] = true
			continue
		}
		done = append(done, t)
	}
	return done, failures
}

func (a *Agent) do(ctx context.Context, t Task) error {
	switch t.Kind {
	case TaskRemove:
		return a.mgr.RemoveUnit(ctx, t.Unit)
	case TaskWrite:
		data, err := a.contents(ctx, t.Hash)
		if err != nil {
			return err
		}
		return a.mgr.WriteUnit(ctx, t.Unit, data)
	case TaskReload:
		return a.mgr.Reload(ctx)
	case TaskStop:
		return a.mgr.Stop(ctx, t.Unit)
	case TaskStart:
		return a.mgr.Start(ctx, t.Unit)
	}
	return fmt.Errorf("unknown task %v", t.Kind)
}

// contents returns the canonical contents of hash, from the cache or the
// registry. What is cached is the bytes read and checked, never a re-rendering.
func (a *Agent) contents(ctx context.Context, h Hash) ([]byte, error) {
	if data, ok := a.files[h]; ok {
		return data, nil
	}
	data, err := a.reg.UnitContents(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("read contents %s: %w", h.Short(), err)
	}
	if got := HashBytes(data); got != h {
		return nil, fmt.Errorf("contents stored under %s hash to %s", h.Short(), got.Short())
	}
	a.files[h] = data
	return data, nil
}
