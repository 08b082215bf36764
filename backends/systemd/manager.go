package systemd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// Manager is a core.UnitManager over one systemd manager's private D-Bus socket.
// It owns its unit directory; it keeps one connection, replaced after the
// manager restarts or the connection drops. Close stops everything it started.
type Manager struct {
	cfg Config
	dir unitDir

	ctx    context.Context // ends at Close; every goroutine below stops with it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	conn     *conn               // nil while disconnected
	tracked  map[string]struct{} // D-Bus object paths of the units in dir
	trackGen uint64              // bumped by every track call
	subs     map[chan struct{}]func() bool
	unlinks  map[string]struct{}  // removed units whose links the next Reload undoes
	loaded   map[string]core.Hash // file hashes as of this Manager's last daemon-reload
	pending  int                  // jobs queued and not yet observed
	idle     chan struct{}        // closed when pending drops to zero
	closed   bool
	instance string // of the manager last connected to (see setConn)
	conns    uint64 // connections made
}

var _ core.UnitManager = (*Manager)(nil)

// Open connects to the manager described by cfg, creates the unit directory if
// needed and starts following the manager. The first connection must succeed
// within ctx; later ones are retried in the background until Close.
//
// Open also finishes what a fleetd that died left half done, before any state
// is reported: it removes temporary files of interrupted writes, links every
// file in the directory again, undoes the links of units whose files are gone
// (removed, but never unlinked), and reloads the manager, so that a file
// written but never reloaded is what systemd runs.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.UnitDir, 0o755); err != nil {
		return nil, fmt.Errorf("systemd: create unit directory: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
	c, err := dial(dctx, cfg.Socket, cfg.CallTimeout)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", err, core.ErrUnavailable)
	}
	m := &Manager{
		cfg:     cfg,
		dir:     unitDir{path: cfg.UnitDir},
		tracked: map[string]struct{}{},
		unlinks: map[string]struct{}{},
		loaded:  map[string]core.Hash{},
		subs:    map[chan struct{}]func() bool{},
		idle:    closedChan(),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if err := m.recover(ctx, c); err != nil {
		m.cancel()
		c.close()
		return nil, err
	}
	m.setConn(c)
	m.wg.Add(1)
	go m.run(c)
	return m, nil
}

// recover brings fleet's directory and the manager back in step after a
// crash: see Open.
func (m *Manager) recover(ctx context.Context, c *conn) error {
	if err := m.dir.removeTemps(); err != nil {
		return fmt.Errorf("systemd: remove stale temporary files: %w", err)
	}
	files, err := m.dir.list()
	if err != nil {
		return fmt.Errorf("systemd: list unit directory: %w", err)
	}
	m.setTracked(files, 0)
	m.relink(ctx, c, files)
	dangling, err := m.dir.danglingLinks(m.cfg.LinkDir)
	if err != nil {
		return fmt.Errorf("systemd: find links of removed units in %s: %w", m.cfg.LinkDir, err)
	}
	for _, name := range dangling {
		m.dropLink(name)
	}
	return m.reload(ctx, c)
}

// relink links every file found in fleet's directory again (one call, plus one
// enable call for the files with [Install]), so that a file whose link was lost
// (fleetd stopped between writing and linking it, or someone disabled it) is not
// stuck not-found. A failure is logged: the units concerned stay not-found and
// are reported so.
func (m *Manager) relink(ctx context.Context, c *conn, files []unitFile) {
	var paths, install []string
	for _, f := range files {
		if isTemplate(f.name) {
			continue
		}
		data, ok, err := m.dir.read(f.name)
		if err != nil || !ok {
			continue
		}
		paths = append(paths, filepath.Join(m.dir.path, f.name))
		if hasInstall(data) {
			install = append(install, f.name)
		}
	}
	if len(paths) == 0 {
		return
	}
	cctx, cancel := m.callCtx(ctx)
	defer cancel()
	if _, err := c.sd.LinkUnitFilesContext(cctx, paths, true, true); err != nil {
		m.cfg.Logger.Warn("relinking fleet's unit files failed", "files", len(paths), "err", c.wrapCallErr(ctx, err, "link"))
		return
	}
	if len(install) > 0 {
		if _, _, err := c.sd.EnableUnitFilesContext(cctx, install, true, true); err != nil {
			m.cfg.Logger.Warn("re-enabling fleet's unit files failed", "files", len(install), "err", c.wrapCallErr(ctx, err, "enable"))
		}
	}
}

// Config returns the configuration in use, with every default filled in.
func (m *Manager) Config() Config { return m.cfg }

// Close stops watching jobs and signals, closes the connection and every Notify
// channel. It leaves units and files as they are. Safe to call more than once.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	// The links of units removed since the last Reload are undone now, or
	// they would outlive this Manager.
	var err error
	m.mu.Lock()
	c := m.conn
	m.mu.Unlock()
	if c != nil && c.alive() {
		err = m.unlinkRemoved(context.Background(), c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn != nil {
		m.conn.close()
		m.conn = nil
	}
	for ch, stop := range m.subs {
		stop()
		close(ch)
		delete(m.subs, ch)
	}
	if err != nil {
		return fmt.Errorf("systemd: close: %w", err)
	}
	return nil
}

// Settle waits until every start and stop job this Manager queued has finished
// (or was given up on), or ctx ends.
func (m *Manager) Settle(ctx context.Context) error {
	m.mu.Lock()
	idle := m.idle
	m.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run owns the connection: it wakes subscribers on every resync tick, and when
// the connection drops it reconnects with bounded backoff until Close.
func (m *Manager) run(c *conn) {
	defer m.wg.Done()
	resync := time.NewTicker(m.cfg.ResyncInterval)
	defer resync.Stop()
	for {
		if c == nil {
			if c = m.reconnect(); c == nil {
				return
			}
			m.setConn(c)
			m.cfg.Logger.Info("reconnected to systemd", "socket", m.cfg.Socket)
			m.wake()
		}
		select {
		case <-m.ctx.Done():
			return
		case <-resync.C:
			m.wake()
		case <-c.done:
			m.mu.Lock()
			m.conn = nil
			m.mu.Unlock()
			c.close()
			c = nil
			m.cfg.Logger.Warn("lost connection to systemd; reconnecting", "socket", m.cfg.Socket)
			m.wake()
		}
	}
}

// reconnect dials until it succeeds, doubling the delay up to ReconnectMax. It
// returns nil once the Manager is closed.
func (m *Manager) reconnect() *conn {
	delay := 50 * time.Millisecond
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return nil
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		c, err := dial(ctx, m.cfg.Socket, m.cfg.CallTimeout)
		cancel()
		if err == nil {
			return c
		}
		m.cfg.Logger.Debug("reconnect to systemd failed", "socket", m.cfg.Socket, "err", err)
		delay = min(2*delay, m.cfg.ReconnectMax)
		t.Reset(delay)
	}
}

// setConn installs a live connection and starts reading its signals. After
// Close it closes c instead.
//
// It takes the identity of the manager behind c as the instance; a manager
// that cannot be identified counts as a new one on every connection (units
// that ended are then started again after a reconnect), which is logged.
func (m *Manager) setConn(c *conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		c.close()
		return
	}
	m.conn = c
	m.conns++
	m.instance = c.id.instance
	if c.id.err != nil {
		m.instance = "unidentified manager on connection " + strconv.FormatUint(m.conns, 10)
		m.cfg.Logger.Warn("cannot identify the systemd manager; each reconnect counts as a new manager", "socket", m.cfg.Socket, "err", c.id.err)
	}
	m.wg.Add(1)
	go m.readSignals(c)
}

// goOwned runs f in a goroutine that Close waits for, unless the Manager is
// closed already. It reports whether f was started.
func (m *Manager) goOwned(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

// Instance identifies the manager last connected to: its PID and start time.
func (m *Manager) Instance() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.instance
}

// current returns the live connection, or an ErrUnavailable error.
func (m *Manager) current() (*conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, fmt.Errorf("systemd: manager closed: %w", core.ErrUnavailable)
	case m.conn == nil || !m.conn.alive():
		return nil, fmt.Errorf("systemd: not connected to %s: %w", m.cfg.Socket, core.ErrUnavailable)
	}
	return m.conn, nil
}

// callCtx bounds one D-Bus call by the caller's context and CallTimeout.
func (m *Manager) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.CallTimeout)
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
