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

// Cause is why the engine made a decision, for code that acts on it; the
// decision's Reason says it in words, for people.
type Cause int

// The causes of decisions.
const (
	// CausePending: the unit should run and had no placement.
	CausePending Cause = iota + 1
	// CauseTargetState: the unit's target state changed (Retarget), or became
	// inactive (Unschedule).
	CauseTargetState
	// CauseDestroyed: the unit no longer exists.
	CauseDestroyed
	// CauseGlobal: the unit is global, which the engine does not place.
	CauseGlobal
	// CauseDuplicate: the unit has another placement, which it keeps.
	CauseDuplicate
	// CauseInvalid: the unit's contents cannot be read or parsed.
	CauseInvalid
	// CauseMachineGone: the machine it was placed on (From) went away.
	CauseMachineGone
	// CauseContentsChanged: the unit's contents changed since it was placed.
	CauseContentsChanged
	// CauseConstraint: its machine no longer suits it (MachineID, metadata, a
	// missing peer, a conflict, a unit there that replaces it).
	CauseConstraint
	// CauseReplaced: a unit placed on its machine in this pass (Related)
	// replaces it.
	CauseReplaced
	// CauseFollowsPeer: its MachineOf peer (Related) was displaced by a
	// Replaces in this pass, and it follows.
	CauseFollowsPeer
)

func (c Cause) String() string {
	switch c {
	case CausePending:
		return "pending"
	case CauseTargetState:
		return "target-state"
	case CauseDestroyed:
		return "destroyed"
	case CauseGlobal:
		return "global"
	case CauseDuplicate:
		return "duplicate"
	case CauseInvalid:
		return "invalid"
	case CauseMachineGone:
		return "machine-gone"
	case CauseContentsChanged:
		return "contents-changed"
	case CauseConstraint:
		return "constraint"
	case CauseReplaced:
		return "replaced"
	case CauseFollowsPeer:
		return "follows-peer"
	}
	return fmt.Sprintf("cause(%d)", int(c))
}

// Decision is one change the engine makes to the schedule, with its cause.
type Decision struct {
	Kind        DecisionKind
	Unit        string
	From        string // the machine it leaves (Unschedule, Reschedule)
	To          string // the machine it goes to (Schedule, Reschedule, Retarget)
	TargetState JobState
	Hash        Hash
	Cause       Cause
	// Related is the unit behind the cause: the replacing unit (CauseReplaced)
	// or the displaced peer (CauseFollowsPeer).
	Related string
	// Reason says the cause in words, for logs and traces.
	Reason string
}

// Displaced reports whether the decision moves a unit out of the way of a
// Replaces in this pass: the unit is replaced, or follows a replaced peer.
func (d Decision) Displaced() bool {
	return d.Cause == CauseReplaced || d.Cause == CauseFollowsPeer
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
