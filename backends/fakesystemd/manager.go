package fakesystemd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// DefaultJobDuration is how much virtual time a start or stop job takes
// unless WithJobDuration says otherwise.
const DefaultJobDuration = 100 * time.Millisecond

// ErrNotLoaded is returned by Start for a unit whose file systemd refused
// (LoadState "bad-setting" or "error"), and for templates, which cannot be
// started. A unit that was never loaded gives core.ErrUnitNotFound instead.
var ErrNotLoaded = errors.New("unit is not loaded")

var _ core.UnitManager = (*Manager)(nil)

// Manager is one machine's systemd in memory. It is safe for concurrent use.
// The zero value is not usable; call New.
type Manager struct {
	clock       core.Clock
	jobDuration time.Duration

	mu     sync.Mutex
	now    time.Time // the latest clock reading; virtual time never runs backward here
	units  []*entry  // sorted by name
	faults Faults
	subs   []chan struct{}
	dirty  bool // a unit's state changed since subscribers were last told
	// restarts counts Restart calls: the manager instance.
	restarts uint64
}

// Option configures a Manager.
type Option func(*Manager)

// WithJobDuration sets how much virtual time every start and stop job takes
// (DefaultJobDuration by default). Zero makes jobs complete at the next call.
func WithJobDuration(d time.Duration) Option {
	return func(m *Manager) { m.jobDuration = max(d, 0) }
}

// New returns an empty manager whose jobs progress as clock advances.
func New(clock core.Clock, opts ...Option) *Manager {
	m := &Manager{clock: clock, jobDuration: DefaultJobDuration}
	for _, opt := range opts {
		opt(m)
	}
	m.now = clock.Now()
	return m
}

// lock takes the mutex and applies the transitions due by the clock's time,
// unless the manager is frozen.
func (m *Manager) lock() {
	m.mu.Lock()
	if !m.faults.Frozen {
		m.advance(m.clock.Now())
	}
}

// unlock tells subscribers about changes and releases the mutex.
func (m *Manager) unlock() {
	if m.dirty {
		for _, ch := range m.subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		m.dirty = false
	}
	m.mu.Unlock()
}

// enter checks the context and the injected call errors. The lock is held.
func (m *Manager) enter(ctx context.Context, op Op, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fakesystemd: %s %s: %w", op, name, err)
	}
	if m.faults.Frozen {
		return fmt.Errorf("fakesystemd: %s %s: manager frozen, no answer: %w (%w)", op, name, core.ErrUnavailable, context.DeadlineExceeded)
	}
	if m.faults.CallError != nil {
		if err := m.faults.CallError(op, name); err != nil {
			return fmt.Errorf("fakesystemd: %s %s: %w", op, name, err)
		}
	}
	return nil
}

// validName checks a unit name before anything is looked up or written: a
// valid unit name of at most core.MaxUnitNameLength bytes (systemd's limit).
func validName(op Op, name string) error {
	if err := core.ValidateName(name); err != nil {
		return fmt.Errorf("fakesystemd: %s: %w", op, err)
	}
	return nil
}

// lookup returns the unit's entry, or nil.
func (m *Manager) lookup(name string) *entry {
	i, found := slices.BinarySearchFunc(m.units, name, func(e *entry, name string) int { return strings.Compare(e.name, name) })
	if !found {
		return nil
	}
	return m.units[i]
}

// lookupOrAdd returns the unit's entry, adding a new one if needed.
func (m *Manager) lookupOrAdd(name string) *entry {
	i, found := slices.BinarySearchFunc(m.units, name, func(e *entry, name string) int { return strings.Compare(e.name, name) })
	if found {
		return m.units[i]
	}
	e := newEntry(name)
	m.units = slices.Insert(m.units, i, e)
	return e
}

// collect forgets the units systemd would garbage-collect.
func (m *Manager) collect() {
	m.units = slices.DeleteFunc(m.units, (*entry).collectable)
}

// WriteUnit writes the unit's file into fleet's directory. Units lists it at
// once, with the hash of contents; systemd sees the new file only after
// Reload (a unit it has never loaded stays "not-found" until then).
func (m *Manager) WriteUnit(ctx context.Context, name string, contents []byte) error {
	if err := validName(OpWriteUnit, name); err != nil {
		return err
	}
	sp := parseSpec(name, contents)
	hash := core.HashBytes(contents)
	m.lock()
	defer m.unlock()
	if err := m.enter(ctx, OpWriteUnit, name); err != nil {
		return err
	}
	e := m.lookupOrAdd(name)
	if !e.hasFile || e.hash != hash {
		m.dirty = true
	}
	e.hasFile, e.hash, e.file = true, hash, sp
	return nil
}

// RemoveUnit stops the unit (a stop job: it may still be deactivating when
// this returns), resets its failed state and removes its file, so that Units
// no longer lists it. Removing a unit that has no file is not an error. A stop
// job that hangs (Faults.Hang) fails the call and keeps the file, as the real
// backend does when a stop outlasts its wait.
func (m *Manager) RemoveUnit(ctx context.Context, name string) error {
	if err := validName(OpRemoveUnit, name); err != nil {
		return err
	}
	m.lock()
	defer m.unlock()
	if err := m.enter(ctx, OpRemoveUnit, name); err != nil {
		return err
	}
	e := m.lookup(name)
	if e == nil || !e.hasFile {
		return nil
	}
	m.beginStop(e, m.now)
	if e.hung {
		// As the real backend, which waits a bounded time for the stop job:
		// the file stays and a later call finishes once the job ends.
		return fmt.Errorf("fakesystemd: %s %s: stop job never finishes (unit file kept)", OpRemoveUnit, name)
	}
	m.resetFailed(e)
	e.hasFile, e.hash, e.file = false, "", spec{}
	m.dirty = true
	m.collect()
	return nil
}

// Reload is daemon-reload: systemd re-reads every file in fleet's directory.
// Running units keep running; a changed file applies from the next start.
func (m *Manager) Reload(ctx context.Context) error {
	m.lock()
	defer m.unlock()
	if err := m.enter(ctx, OpReload, ""); err != nil {
		return err
	}
	m.reloadFiles()
	m.collect()
	return nil
}

// reloadFiles gives systemd's view the contents of the files on disk.
func (m *Manager) reloadFiles() {
	for _, e := range m.units {
		if !e.hasFile {
			continue
		}
		load := core.LoadLoaded
		switch {
		case m.faults.LoadError[e.name]:
			load = LoadError
		case e.file.bad:
			load = LoadBadSetting
		}
		if e.load != load {
			e.load = load
			m.dirty = true
		}
		e.loaded = e.file
	}
}

// Start queues a start job. Starting a unit that is active or already
// starting changes nothing; starting a failed unit starts it afresh.
func (m *Manager) Start(ctx context.Context, name string) error {
	if err := validName(OpStart, name); err != nil {
		return err
	}
	m.lock()
	defer m.unlock()
	if err := m.enter(ctx, OpStart, name); err != nil {
		return err
	}
	e := m.lookup(name)
	switch {
	case e == nil || e.load == core.LoadNotFound:
		return fmt.Errorf("fakesystemd: %s %s: %w", OpStart, name, core.ErrUnitNotFound)
	case e.load != core.LoadLoaded:
		return fmt.Errorf("fakesystemd: %s %s: LoadState %s: %w", OpStart, name, e.load, ErrNotLoaded)
	case strings.Contains(name, "@."):
		return fmt.Errorf("fakesystemd: %s %s: a template cannot be started: %w", OpStart, name, ErrNotLoaded)
	case e.job == startJob, e.job == noJob && e.active == core.ActiveActive:
		return nil
	}
	m.beginStart(e, m.now)
	return nil
}

// Stop queues a stop job. Stopping an inactive unit changes nothing, and a
// failed unit stays failed.
func (m *Manager) Stop(ctx context.Context, name string) error {
	if err := validName(OpStop, name); err != nil {
		return err
	}
	m.lock()
	defer m.unlock()
	if err := m.enter(ctx, OpStop, name); err != nil {
		return err
	}
	return m.stop(name)
}

// stop queues a stop job for a unit systemd knows. The lock is held.
func (m *Manager) stop(name string) error {
	e := m.lookup(name)
	if e == nil || (e.load == core.LoadNotFound && e.active == core.ActiveInactive) {
		return fmt.Errorf("fakesystemd: %s %s: %w", OpStop, name, core.ErrUnitNotFound)
	}
	m.beginStop(e, m.now)
	return nil
}

// Units lists the units whose files are in fleet's directory, sorted by name.
// Hash is that of the file on disk, even before Reload.
func (m *Manager) Units(ctx context.Context) ([]core.UnitStatus, error) {
	m.lock()
	defer m.unlock()
	if err := m.enter(ctx, OpUnits, ""); err != nil {
		return nil, err
	}
	list := make([]core.UnitStatus, 0, len(m.units))
	for _, e := range m.units {
		if e.listed() {
			list = append(list, core.UnitStatus{
				Name: e.name, Hash: e.hash, LoadState: e.load, ActiveState: e.active, SubState: e.sub,
			})
		}
	}
	return list, nil
}

// Instance identifies the manager: it changes on every Restart.
func (m *Manager) Instance() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return "fake-" + strconv.FormatUint(m.restarts, 10)
}

// Notify returns a channel that receives a value (coalesced, capacity 1)
// after each change of a unit's state, as soon as the change is applied: by
// a call or by Step. It is closed when ctx is done.
func (m *Manager) Notify(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if ctx.Err() != nil {
		close(ch)
		return ch
	}
	m.subs = append(m.subs, ch)
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.subs = slices.DeleteFunc(m.subs, func(c chan struct{}) bool { return c == ch })
		close(ch)
	})
	return ch
}

// Step applies the transitions due by the clock's time and tells Notify
// subscribers. It reports whether any unit's state changed.
func (m *Manager) Step() bool {
	m.lock()
	defer m.unlock()
	return m.dirty
}

// NextDeadline returns the earliest virtual time at which a unit's state will
// change by itself (a job completing, an auto-restart, an injected crash), or
// false when nothing is pending. A driver of virtual time advances its clock
// to it and calls Step.
func (m *Manager) NextDeadline() (time.Time, bool) {
	m.lock()
	defer m.unlock()
	if m.faults.Frozen {
		return time.Time{}, false
	}
	_, at, kind := m.next()
	return at, kind != noEvent
}
