package systemd

import (
	"context"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

const (
	unitPathPrefix    = "/org/freedesktop/systemd1/unit/"
	propertiesChanged = "org.freedesktop.DBus.Properties.PropertiesChanged"
	unitInterface     = "org.freedesktop.systemd1.Unit"
	managerReloading  = "org.freedesktop.systemd1.Manager.Reloading"
)

// Notify returns a channel that receives a value (coalesced, capacity 1) after
// a fleet unit's state changes, after a daemon-reload, after the connection to
// the manager drops or comes back, and every ResyncInterval as a safety net. It
// is closed when ctx is done or the Manager is closed.
func (m *Manager) Notify(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		close(ch)
		return ch
	}
	m.subs[ch] = context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[ch]; ok {
			delete(m.subs, ch)
			close(ch)
		}
	})
	return ch
}

// wake sends to every Notify channel without blocking; a full channel already
// holds a wake-up.
func (m *Manager) wake() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// readSignals turns the manager's signals into wake-ups: property changes of
// fleet's units, and the end of a daemon-reload. It stops with the connection.
func (m *Manager) readSignals(c *conn) {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-c.done:
			return
		case s, ok := <-c.signals:
			if !ok {
				return
			}
			if m.relevant(s) {
				m.wake()
			}
		}
	}
}

// relevant reports whether a signal may have changed what Units returns.
func (m *Manager) relevant(s *dbus.Signal) bool {
	switch s.Name {
	case propertiesChanged:
		if len(s.Body) == 0 || s.Body[0] != unitInterface {
			return false
		}
		m.mu.Lock()
		_, ok := m.tracked[string(s.Path)]
		m.mu.Unlock()
		return ok
	case managerReloading:
		if len(s.Body) == 0 {
			return false
		}
		reloading, ok := s.Body[0].(bool)
		return ok && !reloading
	}
	return false
}

// unitObjectPath is the D-Bus object path systemd gives a unit.
func unitObjectPath(name string) string { return unitPathPrefix + sdbus.PathBusEscape(name) }

// trackedGen returns the generation of the tracked set, to pass to setTracked.
func (m *Manager) trackedGen() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trackGen
}

// setTracked makes the listed units the ones whose signals matter. If track
// ran since gen was read (a write or removal raced with the listing), the
// listing may be stale and only adds.
func (m *Manager) setTracked(files []unitFile, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen == m.trackGen {
		clear(m.tracked)
	}
	for _, f := range files {
		m.tracked[unitObjectPath(f.name)] = struct{}{}
	}
}

// track adds or removes one unit from the set of units whose signals matter.
func (m *Manager) track(name string, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trackGen++
	if on {
		m.tracked[unitObjectPath(name)] = struct{}{}
	} else {
		delete(m.tracked, unitObjectPath(name))
	}
}
