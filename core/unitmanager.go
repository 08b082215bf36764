package core

import "context"

// The systemd states fleet reads. LoadState, ActiveState and SubState are strings
// as systemd reports them; these are the values the core interprets.
const (
	LoadLoaded   = "loaded"
	LoadNotFound = "not-found"

	ActiveActive       = "active"
	ActiveActivating   = "activating"
	ActiveReloading    = "reloading"
	ActiveInactive     = "inactive"
	ActiveDeactivating = "deactivating"
	ActiveFailed       = "failed"
)

// UnitStatus is one unit as a machine's systemd reports it.
type UnitStatus struct {
	Name        string
	Hash        Hash // of the unit file fleet wrote for it (HashBytes of the file)
	LoadState   string
	ActiveState string
	SubState    string
}

// Running reports whether systemd is running the unit or about to.
func (s UnitStatus) Running() bool {
	switch s.ActiveState {
	case ActiveActive, ActiveActivating, ActiveReloading:
		return true
	}
	return false
}

// UnitManager is one machine's systemd, restricted to the units fleet manages
// (those whose files are in fleet's unit directory). It owns that directory;
// nothing outside it is touched. Calls return once systemd has accepted the
// request; job results show up in later Units calls.
type UnitManager interface {
	// WriteUnit writes (or replaces) the file of a unit and links it into the
	// manager. It takes effect after Reload.
	WriteUnit(ctx context.Context, name string, contents []byte) error
	// RemoveUnit stops the unit, resets its failed state and removes its file.
	// Undoing its link and enablement may wait for the next Reload, so callers
	// reload after a batch of removals. If stopping fails the file is kept and
	// the error returned.
	RemoveUnit(ctx context.Context, name string) error
	// Reload makes the manager re-read unit files (daemon-reload), after undoing
	// the links of units removed since the last Reload.
	Reload(ctx context.Context) error
	// Start queues a start job for the unit.
	Start(ctx context.Context, name string) error
	// Stop queues a stop job for the unit.
	Stop(ctx context.Context, name string) error
	// Units lists every unit whose file is in fleet's directory, with its state,
	// sorted by name.
	Units(ctx context.Context) ([]UnitStatus, error)
	// Notify returns a channel that receives a value (coalesced, capacity 1) after
	// each change of a fleet unit's state, closed when ctx is done.
	Notify(ctx context.Context) <-chan struct{}
	// Instance identifies the manager process the last calls reached. It
	// changes only when a new manager replaces the old one (and every unit's
	// runtime state is lost with it): not when a connection to the same
	// manager is made again, nor on daemon-reload or daemon-reexec.
	Instance() string
}
