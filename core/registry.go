package core

import (
	"context"
	"time"
)

// Unit is a submitted unit as the registry stores it. Its name never changes; its
// contents change only by a replace (ReplaceUnit), its TargetState by users.
type Unit struct {
	Name        string
	Hash        Hash     // of the canonical contents, stored once by hash
	TargetState JobState // desired state, set by users
	Global      bool     // [X-Fleet] Global=true: every eligible agent runs it
	// Revision identifies this version of the unit's record: the registry
	// assigns a new, higher one on every write to the unit (create, target
	// state, replace). CreateUnit and ReplaceUnit ignore the value given.
	Revision int64
}

// Placement says that the engine placed Unit on Machine. It mirrors the unit's
// Hash and TargetState, so an agent's desired state is exactly its machine's
// placements (one range read, one watch) plus the global units.
type Placement struct {
	Unit        string
	Machine     string
	Hash        Hash
	TargetState JobState
	// UnitRevision is the Revision of the unit whose hash and target state this
	// placement mirrors. An agent tells a new request to start (a start after a
	// stop, new contents) from the same one seen again by it.
	UnitRevision int64
}

// OpKind is the kind of a ScheduleOp.
type OpKind int

// The schedule operations.
const (
	// OpPlace creates or updates the placement of a unit on a machine.
	OpPlace OpKind = iota + 1
	// OpUnplace removes the placement of a unit from a machine.
	OpUnplace
)

// ScheduleOp is one write to the schedule.
//
// An OpPlace whose UnitRevision is set is conditional: if the unit has been
// written since that revision (its target state or contents changed, it was
// destroyed, or replaced by a global unit), the op is skipped, not applied. The
// engine's next pass plans from the new version, so a user's change is never
// overwritten by a plan made before it. A zero UnitRevision places
// unconditionally (tools and tests). Unplacing is never skipped.
type ScheduleOp struct {
	Kind OpKind
	Placement
}

// Fence is the engine's proof of leadership: the epoch of its lease. A fenced write
// succeeds only while the fence is the current one.
type Fence struct {
	Engine  string // the engine's ID (its machine ID)
	Session string // the fleetd process the engine runs in
	Epoch   int64  // strictly increasing across leadership changes
}

// UnitState is what an agent publishes for one unit on its machine: systemd's view
// (LOAD/ACTIVE/SUB), the hash of the file the agent wrote, and whether the agent
// holds the unit launched (it started the unit's current revision, or the unit
// runs): fleet's "launched" marker, from which the cluster-level state derives.
type UnitState struct {
	Unit        string
	Machine     string
	Hash        Hash
	LoadState   string
	ActiveState string
	SubState    string
	Launched    bool
}

// UnitStore holds the units users submit. Callers: the API and fleetctl write,
// the engine reads.
type UnitStore interface {
	// CreateUnit stores u with its canonical contents (whose hash is u.Hash).
	// It fails with ErrUnitExists if the name is taken; nothing is overwritten.
	CreateUnit(ctx context.Context, u Unit, contents []byte) error
	// DestroyUnit removes a unit; ErrUnitNotFound if absent. Its placement stays
	// until the engine removes it.
	DestroyUnit(ctx context.Context, name string) error
	// ReplaceUnit replaces the contents (u.Hash), Global flag and target state of
	// the existing unit u.Name; ErrUnitNotFound if absent. Like SetTargetState it
	// mirrors the new hash and target state into the unit's placements in the
	// same atomic write. Contents no unit uses any more are dropped.
	ReplaceUnit(ctx context.Context, u Unit, contents []byte) error
	// SetTargetState changes a unit's desired state, and the target state
	// mirrored into its placements, in one atomic write: an agent sees a user's
	// start, stop or unload of a placed unit without waiting for an engine.
	// ErrUnitNotFound if absent.
	SetTargetState(ctx context.Context, name string, state JobState) error
	// Unit returns the unit name; ErrUnitNotFound if absent.
	Unit(ctx context.Context, name string) (Unit, error)
	// Units lists every unit, sorted by name.
	Units(ctx context.Context) ([]Unit, error)
	// GlobalUnits lists the units with Global set, sorted by name.
	GlobalUnits(ctx context.Context) ([]Unit, error)
	// UnitContents returns the canonical contents stored under hash; ErrUnitNotFound
	// if none.
	UnitContents(ctx context.Context, hash Hash) ([]byte, error)
}

// ScheduleStore holds the placements. Only the leading engine writes, fenced.
type ScheduleStore interface {
	// Placements lists every placement, sorted by unit then machine.
	Placements(ctx context.Context) ([]Placement, error)
	// MachinePlacements lists the placements on one machine, sorted by unit.
	MachinePlacements(ctx context.Context, machine string) ([]Placement, error)
	// ApplySchedule applies ops atomically, all or nothing, if fence is current;
	// otherwise it fails with ErrStaleFence and writes nothing. Unplacing a
	// placement that does not exist is not an error. It returns the names of the
	// units, sorted, whose OpPlace was skipped because the unit changed since
	// the engine planned (see ScheduleOp).
	ApplySchedule(ctx context.Context, fence Fence, ops []ScheduleOp) (skipped []string, err error)
}

// Presence holds the live machines. Each machine's record lives under a lease of
// TTL ttl that its agent renews; when the lease expires the record and the
// machine's published unit states vanish together.
type Presence interface {
	// Heartbeat creates or renews the presence of m for session (one per fleetd
	// process). If another session holds a live presence for m.ID it fails with
	// ErrMachineConflict and changes nothing.
	Heartbeat(ctx context.Context, m MachineState, session string, ttl time.Duration) error
	// Leave ends the presence of machineID held by session, at once.
	Leave(ctx context.Context, machineID, session string) error
	// Machines lists the live machines, sorted by ID, each with its announced
	// metadata merged with the dynamic metadata (see MetadataStore).
	Machines(ctx context.Context) ([]MachineState, error)
	// Machine returns one live machine as Machines lists it; ErrNotPresent if
	// it has no live presence.
	Machine(ctx context.Context, id string) (MachineState, error)
}

// MetadataOp sets one dynamic metadata key of a machine, or removes it when
// Value is empty.
type MetadataOp struct {
	Machine, Key, Value string
}

// MetadataStore holds the machine metadata set through the API (fleet's PATCH
// /machines). It overrides what a machine announces (a removal hides an
// announced key) and outlives the machine's presence, so it applies again when
// the machine returns. Changes wake the engine and the machine concerned.
type MetadataStore interface {
	// PatchMetadata applies ops atomically, in order. The machines need not be
	// present.
	PatchMetadata(ctx context.Context, ops []MetadataOp) error
}

// StateStore holds the unit states agents publish, attached to their presence.
type StateStore interface {
	// PublishUnitStates writes states and deletes the states of the units in
	// removed, for machineID only. It fails with ErrNotPresent if the machine has
	// no live presence held by session.
	PublishUnitStates(ctx context.Context, machineID, session string, states []UnitState, removed []string) error
	// UnitStates lists every published state, sorted by unit then machine.
	UnitStates(ctx context.Context) ([]UnitState, error)
}

// Leadership is the engine lease: at most one engine leads at a time.
type Leadership interface {
	// AcquireLeadership acquires or renews the lease for engine, run by the fleetd
	// process session, with ttl. It returns the fence to put on writes, or
	// ErrNotLeader if another engine holds the lease. A lease held under the same
	// engine ID by another session (a second live process with the same machine
	// ID) is another engine's; the same engine and session (a restarted process
	// that kept its session) renews it. A renewal keeps the epoch; a new
	// acquisition gets a higher one.
	AcquireLeadership(ctx context.Context, engine, session string, ttl time.Duration) (Fence, error)
	// ResignLeadership gives up the lease if fence is current.
	ResignLeadership(ctx context.Context, fence Fence) error
}

// Scope selects which changes wake a watcher.
type Scope struct {
	// Machine, if set, limits the scope to what that machine's agent needs: its
	// placements, the global units and its dynamic metadata. Empty means the
	// engine's scope: units, target states, machines (with their metadata) and
	// placements.
	Machine string
}

// Notifier wakes drivers when something in a scope changes.
type Notifier interface {
	// Notify returns a channel that receives a value after each change in scope,
	// coalesced (capacity 1), and is closed when ctx is done. Subscribe before
	// reading so no change is missed.
	Notify(ctx context.Context, scope Scope) <-chan struct{}
}

// Registry is the cluster's shared state: every role interface together.
type Registry interface {
	UnitStore
	ScheduleStore
	Presence
	MetadataStore
	StateStore
	Leadership
	Notifier
}

// EngineRegistry is what the engine pass uses.
type EngineRegistry interface {
	UnitStore
	ScheduleStore
	Presence
	Leadership
}

// AgentRegistry is what the agent pass uses.
type AgentRegistry interface {
	Presence
	StateStore
	MachinePlacements(ctx context.Context, machine string) ([]Placement, error)
	GlobalUnits(ctx context.Context) ([]Unit, error)
	UnitContents(ctx context.Context, hash Hash) ([]byte, error)
}
