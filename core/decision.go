package core

import "fmt"

// DecisionKind is the kind of an engine Decision.
type DecisionKind int

// The engine's decisions.
const (
	// Schedule places an unplaced unit on a machine.
	Schedule DecisionKind = iota + 1
	// Unschedule removes a unit's placement.
	Unschedule
	// Reschedule moves a unit from one machine to another.
	Reschedule
	// Retarget updates the target state mirrored into a placement.
	Retarget
)

func (k DecisionKind) String() string {
	switch k {
	case Schedule:
		return "schedule"
	case Unschedule:
		return "unschedule"
	case Reschedule:
		return "reschedule"
	case Retarget:
		return "retarget"
	}
	return fmt.Sprintf("decision(%d)", int(k))
}

// Decision is one change the engine makes to the schedule, with its reason.
type Decision struct {
	Kind        DecisionKind
	Unit        string
	From        string // the machine it leaves (Unschedule, Reschedule)
	To          string // the machine it goes to (Schedule, Reschedule, Retarget)
	TargetState JobState
	Hash        Hash
	Reason      string
}

// String is a stable one-line form used in logs, traces and golden files.
func (d Decision) String() string {
	switch d.Kind {
	case Schedule:
		return fmt.Sprintf("schedule %s to %s", d.Unit, d.To)
	case Unschedule:
		return fmt.Sprintf("unschedule %s from %s (%s)", d.Unit, d.From, d.Reason)
	case Reschedule:
		return fmt.Sprintf("reschedule %s from %s to %s (%s)", d.Unit, d.From, d.To, d.Reason)
	case Retarget:
		return fmt.Sprintf("retarget %s on %s to %s", d.Unit, d.To, d.TargetState)
	}
	return d.Kind.String()
}

// ops turns decisions into schedule writes; rev gives the revision of each unit
// the plan was made from, carried by the places. When several decisions touch
// the same placement (a unit placed, then displaced in the same pass), only the
// last write to it is kept, at the position of the first, so each key is
// written once.
func ops(ds []Decision, rev func(unit string) int64) []ScheduleOp {
	var out []ScheduleOp
	at := map[[2]string]int{}
	add := func(op ScheduleOp) {
		k := [2]string{op.Unit, op.Machine}
		if i, ok := at[k]; ok {
			out[i] = op
			return
		}
		at[k] = len(out)
		out = append(out, op)
	}
	for _, d := range ds {
		place := ScheduleOp{Kind: OpPlace, Placement: Placement{Unit: d.Unit, Machine: d.To, Hash: d.Hash, TargetState: d.TargetState, UnitRevision: rev(d.Unit)}}
		unplace := ScheduleOp{Kind: OpUnplace, Placement: Placement{Unit: d.Unit, Machine: d.From}}
		switch d.Kind {
		case Schedule, Retarget:
			add(place)
		case Unschedule:
			add(unplace)
		case Reschedule:
			if d.From != d.To {
				add(unplace)
			}
			add(place)
		}
	}
	return out
}

// Unplaceable is a unit that wants to run but that no live machine can take.
type Unplaceable struct {
	Unit, Reason string
}

func (u Unplaceable) String() string { return fmt.Sprintf("unplaceable %s (%s)", u.Unit, u.Reason) }
