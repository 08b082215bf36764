package fakesystemd

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// Op names a UnitManager call, for Faults.CallError.
type Op string

// The calls that Faults.CallError can fail.
const (
	OpWriteUnit  Op = "WriteUnit"
	OpRemoveUnit Op = "RemoveUnit"
	OpReload     Op = "Reload"
	OpStart      Op = "Start"
	OpStop       Op = "Stop"
	OpUnits      Op = "Units"
)

// Faults are the failures a Manager injects. The zero value injects none.
// Maps are keyed by unit name.
type Faults struct {
	// StartFails makes start jobs of these units fail when they complete: the
	// unit goes failed/failed, or waits to restart if its Restart= says so.
	StartFails map[string]bool
	// Hang makes jobs of these units, queued while the fault is set, never
	// complete: the unit stays activating/start (or deactivating/stop-sigterm)
	// until another job replaces that one or the manager restarts.
	Hang map[string]bool
	// CrashAt makes a unit that is running at the given virtual time crash
	// then, as if its main process was killed: it goes failed/failed, or waits
	// to restart as its Restart= says. A unit not running at that time is not
	// affected.
	CrashAt map[string]time.Time
	// LoadError gives these units LoadState "error" at the next Reload (as
	// when systemd cannot read the file), whatever their contents.
	LoadError map[string]bool
	// CallError, when set, is asked before every call is carried out; a
	// non-nil result fails the call (wrapped), which then changes nothing. unit
	// is "" for Reload and Units. It runs with the Manager locked, so it must
	// not call the Manager.
	CallError func(op Op, unit string) error
	// Frozen models a hung manager (a stopped process): every call fails at
	// once and changes nothing, with an error wrapping core.ErrUnavailable
	// and context.DeadlineExceeded, as the real backend's calls fail after
	// their call timeout; and nothing progresses (NextDeadline reports none).
	// Jobs, restarts and crashes that fell due meanwhile happen once the
	// fault is lifted, at their own times.
	Frozen bool
}

// SetFaults replaces the injected faults. The maps are copied. Units that
// already crossed a fault's moment are not revisited: a job queued before
// Hang was set still completes.
func (m *Manager) SetFaults(f Faults) {
	m.lock()
	defer m.unlock()
	m.faults = Faults{
		StartFails: maps.Clone(f.StartFails),
		Hang:       maps.Clone(f.Hang),
		CrashAt:    maps.Clone(f.CrashAt),
		LoadError:  maps.Clone(f.LoadError),
		CallError:  f.CallError,
		Frozen:     f.Frozen,
	}
}

// Crash kills the main process of the unit now, as a crash or the kernel's
// OOM killer would: a running or starting unit goes failed/failed, or waits
// to restart as its Restart= says. A unit that is not running is unaffected.
// It returns core.ErrUnitNotFound for a unit systemd does not know.
func (m *Manager) Crash(name string) error {
	if err := validName("Crash", name); err != nil {
		return err
	}
	m.lock()
	defer m.unlock()
	e := m.lookup(name)
	if e == nil {
		return fmt.Errorf("fakesystemd: Crash %s: %w", name, core.ErrUnitNotFound)
	}
	m.crash(e, m.now)
	return nil
}

// StopBehindBack stops the unit as a person running `systemctl stop` would,
// behind fleet's back: a stop job, as by Stop, but never failed by
// Faults.CallError. It returns core.ErrUnitNotFound for a unit systemd does
// not know.
func (m *Manager) StopBehindBack(name string) error {
	if err := validName("StopBehindBack", name); err != nil {
		return err
	}
	m.lock()
	defer m.unlock()
	return m.stop(name)
}

// Restart restarts the manager, as when `systemd --user` exits and is started
// again while fleet's directory survives. Everything in memory is lost: every
// unit stops at once (no stop jobs), pending jobs and restarts are dropped,
// failed states and start limits are reset, and units whose files were
// removed are forgotten. The new manager then loads every file in fleet's
// directory, as a Reload would (no Reload is needed), and starts the loaded
// units whose [Install] section says WantedBy=default.target, since fleet
// enables units that have one. Notify subscribers stay subscribed; Instance
// changes.
func (m *Manager) Restart() {
	m.lock()
	defer m.unlock()
	m.restarts++
	m.units = slices.DeleteFunc(m.units, func(e *entry) bool { return !e.hasFile })
	m.dirty = true
	for _, e := range m.units {
		e.job, e.hung, e.due, e.since, e.starts = noJob, false, time.Time{}, time.Time{}, nil
		e.active, e.sub = core.ActiveInactive, "dead"
		e.load = core.LoadNotFound
	}
	m.reloadFiles()
	for _, e := range m.units {
		if e.load == core.LoadLoaded && e.loaded.wantedByBoot {
			m.beginStart(e, m.now)
		}
	}
}
