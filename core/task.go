package core

import (
	"fmt"
	"sort"
)

// TaskKind is the kind of an agent Task. Tasks run in the order of their kinds.
type TaskKind int

// The agent's tasks, in execution order.
const (
	// TaskRemove stops, disables and removes a unit's file.
	TaskRemove TaskKind = iota + 1
	// TaskWrite writes a unit's file and links it into the manager.
	TaskWrite
	// TaskReload makes the manager re-read unit files, once per pass.
	TaskReload
	// TaskStop stops a unit.
	TaskStop
	// TaskStart starts a unit.
	TaskStart
)

func (k TaskKind) String() string {
	switch k {
	case TaskRemove:
		return "remove"
	case TaskWrite:
		return "write"
	case TaskReload:
		return "reload"
	case TaskStop:
		return "stop"
	case TaskStart:
		return "start"
	}
	return fmt.Sprintf("task(%d)", int(k))
}

// Task is one action of the agent on its machine's systemd.
type Task struct {
	Kind   TaskKind
	Unit   string // empty for TaskReload
	Hash   Hash   // for TaskWrite
	Reason string
	// Revision, for TaskStart, is the revision of the unit the start is for.
	Revision int64
}

// String is a stable one-line form used in logs, traces and golden files.
func (t Task) String() string {
	if t.Kind == TaskReload {
		return "reload"
	}
	return fmt.Sprintf("%s %s (%s)", t.Kind, t.Unit, t.Reason)
}

// TaskFailure is a task that failed, with its error.
type TaskFailure struct {
	Task Task
	Err  error
}

func (f TaskFailure) String() string { return fmt.Sprintf("%s: %v", f.Task, f.Err) }

// sortTasks orders tasks by kind, then unit name.
func sortTasks(ts []Task) {
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].Kind != ts[j].Kind {
			return ts[i].Kind < ts[j].Kind
		}
		return ts[i].Unit < ts[j].Unit
	})
}
