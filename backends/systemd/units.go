package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/fleet-rebuild/fleet/core"
)

// WriteUnit writes a unit's file into fleet's directory and links it into the
// manager at runtime (enabling it at runtime too when it has an [Install]
// section). It takes effect after Reload. If linking or enabling fails, the file
// is removed again and the error returned.
func (m *Manager) WriteUnit(ctx context.Context, name string, contents []byte) error {
	path, err := m.dir.file(name)
	if err != nil {
		return fmt.Errorf("systemd: write unit: %w", err)
	}
	if len(contents) > core.MaxUnitFileSize {
		return &core.UnitFileError{File: name, Reason: fmt.Sprintf("file is %d bytes, larger than the limit of %d", len(contents), core.MaxUnitFileSize)}
	}
	if bytes.IndexByte(contents, 0) >= 0 {
		return &core.UnitFileError{File: name, Reason: "file contains a NUL byte"}
	}
	if isTemplate(name) {
		return &core.NameError{Name: name, Reason: "a template cannot be loaded by itself"}
	}
	c, err := m.current()
	if err != nil {
		return err
	}
	old, hadFile, err := m.dir.read(name)
	if err != nil {
		return fmt.Errorf("systemd: write unit %s: %w", name, err)
	}
	if err := m.dir.write(name, contents); err != nil {
		return fmt.Errorf("systemd: write unit %s: %w", name, err)
	}
	m.track(name, true)
	unlinkQueued := m.keepLink(name)
	if err := m.link(ctx, c, name, path, hasInstall(contents)); err != nil {
		// Leave things as they were: the previous file (whose unit may be
		// running) and its queued unlink, or no file at all.
		if !hadFile {
			m.track(name, false)
			return errors.Join(err, m.dir.remove(name))
		}
		if unlinkQueued {
			m.dropLink(name)
		}
		return errors.Join(err, m.dir.write(name, old))
	}
	return nil
}

// isTemplate reports whether name is a template (foo@.service).
func isTemplate(name string) bool {
	n, err := core.ParseUnitName(name)
	return err == nil && n.IsTemplate()
}

// link makes the manager see the file (LinkUnitFiles, runtime, forced) and, for
// a unit with [Install], enables it at runtime; a failed enable is undone.
func (m *Manager) link(ctx context.Context, c *conn, name, path string, install bool) error {
	cctx, cancel := m.callCtx(ctx)
	defer cancel()
	if _, err := c.sd.LinkUnitFilesContext(cctx, []string{path}, true, true); err != nil {
		return c.wrapCallErr(ctx, err, "link %s", path)
	}
	if !install {
		return nil
	}
	if _, _, err := c.sd.EnableUnitFilesContext(cctx, []string{name}, true, true); err != nil {
		err = c.wrapCallErr(ctx, err, "enable %s", name)
		if _, derr := c.sd.DisableUnitFilesContext(cctx, []string{name}, true); derr != nil {
			err = errors.Join(err, c.wrapCallErr(ctx, derr, "undo link of %s", name))
		}
		return err
	}
	return nil
}

// hasInstall reports whether a unit file has an [Install] section header.
func hasInstall(contents []byte) bool {
	for line := range bytes.Lines(contents) {
		if string(bytes.TrimSpace(line)) == "[Install]" {
			return true
		}
	}
	return false
}

// RemoveUnit stops the unit (waiting for the stop job at most StopWait, so that
// a unit slow to stop does not hold up the agent's pass),
// resets its failed state and removes its file. Undoing its runtime link and
// enablement waits for the next Reload, which does it for every removed unit in
// one call: systemd walks every runtime link on each disable, so one call per
// unit costs O(units) each. If the stop fails, the file is kept so that a later
// call can retry. A unit without a file in fleet's directory is not fleet's:
// nothing is done.
func (m *Manager) RemoveUnit(ctx context.Context, name string) error {
	ok, err := m.dir.has(name)
	if err != nil {
		return fmt.Errorf("systemd: remove unit: %w", err)
	}
	if !ok {
		m.track(name, false)
		return nil
	}
	if isTemplate(name) {
		// Nothing of a template runs by itself: only the file is fleet's.
		if err := m.dir.remove(name); err != nil {
			return fmt.Errorf("systemd: remove unit file %s: %w", name, err)
		}
		m.track(name, false)
		return nil
	}
	c, err := m.current()
	if err != nil {
		return err
	}
	result, err := m.submit(ctx, c, opStop, name)
	if err != nil {
		return fmt.Errorf("%w (unit file kept)", err)
	}
	if result != nil {
		if err := m.wait(ctx, c, opStop, name, result, m.cfg.StopWait); err != nil {
			return fmt.Errorf("%w (unit file kept; the stop job goes on, a later call finishes the removal)", err)
		}
	}
	cctx, cancel := m.callCtx(ctx)
	defer cancel()
	if err := c.sd.ResetFailedUnitContext(cctx, name); err != nil && dbusErrorName(err) != errNoSuchUnit {
		return fmt.Errorf("%w (unit file kept)", c.wrapCallErr(ctx, err, "reset-failed %s", name))
	}
	if err := m.dir.remove(name); err != nil {
		return fmt.Errorf("systemd: remove unit file %s: %w", name, err)
	}
	m.track(name, false)
	m.dropLink(name)
	return nil
}

// dropLink queues name's runtime link for removal at the next Reload.
func (m *Manager) dropLink(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unlinks[name] = struct{}{}
}

// keepLink cancels a queued link removal, the unit being written again, and
// reports whether one was queued.
func (m *Manager) keepLink(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, queued := m.unlinks[name]
	delete(m.unlinks, name)
	return queued
}

// takeUnlinks returns the queued link removals, sorted, and empties the queue.
func (m *Manager) takeUnlinks() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.unlinks))
	for n := range m.unlinks {
		names = append(names, n)
	}
	clear(m.unlinks)
	sort.Strings(names)
	return names
}

// unlinkRemoved disables, in one call, the units removed since the last Reload
// (which also removes their links). If the batch fails, each is tried alone, so
// that one unit systemd no longer knows does not keep the others linked; the
// ones that still fail are queued again.
func (m *Manager) unlinkRemoved(ctx context.Context, c *conn) error {
	names := m.takeUnlinks()
	if len(names) == 0 {
		return nil
	}
	cctx, cancel := m.callCtx(ctx)
	defer cancel()
	if _, err := c.sd.DisableUnitFilesContext(cctx, names, true); err == nil {
		return nil
	}
	var errs []error
	for _, n := range names {
		if _, err := c.sd.DisableUnitFilesContext(cctx, []string{n}, true); err != nil && dbusErrorName(err) != errNoSuchUnit {
			errs = append(errs, c.wrapCallErr(ctx, err, "disable %s", n))
			m.dropLink(n)
		}
	}
	return errors.Join(errs...)
}

// Reload undoes the links of the units removed since the last Reload, then
// makes the manager re-read every unit file (one daemon-reload; the caller
// batches writes and removals before it). A link that cannot be undone does
// not hold the reload back: it is logged and tried again at the next Reload,
// and Reload reports only whether the manager re-read the files.
func (m *Manager) Reload(ctx context.Context) error {
	c, err := m.current()
	if err != nil {
		return err
	}
	return m.reload(ctx, c)
}

// reload is Reload on connection c. It remembers the hashes of the files the
// manager re-read, for Units.
func (m *Manager) reload(ctx context.Context, c *conn) error {
	unlinkErr := m.unlinkRemoved(ctx, c)
	files, err := m.dir.list()
	if err != nil {
		return errors.Join(fmt.Errorf("systemd: list %s: %w", m.dir.path, err), unlinkErr)
	}
	cctx, cancel := m.callCtx(ctx)
	defer cancel()
	if err := c.sd.ReloadContext(cctx); err != nil {
		return errors.Join(c.wrapCallErr(ctx, err, "daemon-reload"), unlinkErr)
	}
	m.mu.Lock()
	clear(m.loaded)
	for _, f := range files {
		m.loaded[f.name] = f.hash
	}
	m.mu.Unlock()
	if unlinkErr != nil {
		m.cfg.Logger.Warn("undoing links of removed units failed; reloaded anyway, the next Reload tries again", "err", unlinkErr)
	}
	return nil
}

// Units lists every unit whose file is in fleet's directory, sorted by name,
// with the hash of its file and its states from one ListUnitsByNames call. A
// unit systemd does not know is reported with LoadState "not-found".
//
// A state is reported only for the file listed with it: if systemd holds an
// older version of a fleet unit (NeedDaemonReload, as after a rewrite that was
// not followed by a successful Reload, or an edit behind fleet's back), Units
// reloads the manager first and lists again. Only units whose file changed
// since this Manager's last reload are asked about, so this costs nothing
// while nothing changed.
func (m *Manager) Units(ctx context.Context) ([]core.UnitStatus, error) {
	c, list, stale, err := m.list(ctx)
	if err != nil || !stale {
		return list, err
	}
	if err := m.reload(ctx, c); err != nil {
		return nil, err
	}
	_, list, _, err = m.list(ctx)
	return list, err
}

// list is one listing for Units; stale reports a unit that needs a reload.
func (m *Manager) list(ctx context.Context) (*conn, []core.UnitStatus, bool, error) {
	gen := m.trackedGen()
	files, err := m.dir.list()
	if err != nil {
		return nil, nil, false, fmt.Errorf("systemd: list %s: %w", m.dir.path, err)
	}
	m.setTracked(files, gen)
	out := make([]core.UnitStatus, len(files))
	if len(files) == 0 {
		return nil, out, false, nil
	}
	// A template is never a unit by itself, and naming one makes systemd refuse
	// the whole ListUnitsByNames call: it is reported not-found without asking.
	names := make([]string, 0, len(files))
	index := make([]int, 0, len(files))
	for i, f := range files {
		out[i] = core.UnitStatus{Name: f.name, Hash: f.hash, LoadState: core.LoadNotFound, ActiveState: core.ActiveInactive, SubState: "dead"}
		if !isTemplate(f.name) {
			names = append(names, f.name)
			index = append(index, i)
		}
	}
	if len(names) == 0 {
		return nil, out, false, nil
	}
	c, err := m.current()
	if err != nil {
		return nil, nil, false, err
	}
	cctx, cancel := m.callCtx(ctx)
	defer cancel()
	states, err := c.sd.ListUnitsByNamesContext(cctx, names)
	if err != nil {
		return nil, nil, false, c.wrapCallErr(ctx, err, "list %d units", len(names))
	}
	// systemd answers one entry per name, in order; an alias comes back under
	// the name of the unit it points to, so pair by position when it can.
	byName := make(map[string]int, len(names))
	for k, n := range names {
		byName[n] = index[k]
	}
	for j, s := range states {
		i, ok := byName[s.Name]
		if len(states) == len(names) {
			i, ok = index[j], true
		}
		if ok {
			out[i].LoadState, out[i].ActiveState, out[i].SubState = s.LoadState, s.ActiveState, s.SubState
		}
	}
	stale, err := m.needReload(ctx, c, out)
	return c, out, stale, err
}

// needReload asks systemd whether it holds an older version of a unit whose
// file changed since this Manager's last reload (NeedDaemonReload). A unit
// systemd has not loaded is not asked: it reads the file when it loads it.
// Units whose loaded version is current are remembered as such.
func (m *Manager) needReload(ctx context.Context, c *conn, list []core.UnitStatus) (bool, error) {
	for _, s := range list {
		m.mu.Lock()
		h, ok := m.loaded[s.Name]
		m.mu.Unlock()
		if (ok && h == s.Hash) || s.LoadState == core.LoadNotFound || isTemplate(s.Name) {
			continue
		}
		cctx, cancel := m.callCtx(ctx)
		p, err := c.sd.GetUnitPropertyContext(cctx, s.Name, "NeedDaemonReload")
		cancel()
		if err != nil {
			return false, c.wrapCallErr(ctx, err, "NeedDaemonReload of %s", s.Name)
		}
		if need, _ := p.Value.Value().(bool); need {
			return true, nil
		}
		m.mu.Lock()
		m.loaded[s.Name] = s.Hash
		m.mu.Unlock()
	}
	return false, nil
}
