package systemd

import (
	"context"
	"fmt"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// jobOp is a kind of job fleet queues.
type jobOp string

const (
	opStart jobOp = "start"
	opStop  jobOp = "stop"
)

// jobResultDone is the result of a job that did what it was asked.
const jobResultDone = "done"

// Start queues a start job for a unit whose file is in fleet's directory. It
// returns once systemd accepted the job; the result shows in later Units calls,
// and a failed job is logged and wakes Notify.
func (m *Manager) Start(ctx context.Context, name string) error {
	return m.queue(ctx, opStart, name)
}

// Stop queues a stop job for a unit whose file is in fleet's directory. A unit
// systemd has not loaded is already stopped.
func (m *Manager) Stop(ctx context.Context, name string) error {
	return m.queue(ctx, opStop, name)
}

// queue submits a job in "replace" mode and watches its result in the
// background, bounded by JobTimeout.
func (m *Manager) queue(ctx context.Context, op jobOp, name string) error {
	if ok, err := m.dir.has(name); err != nil {
		return fmt.Errorf("systemd: %s %s: %w", op, name, err)
	} else if !ok {
		return fmt.Errorf("systemd: %s %s: no file in %s: %w", op, name, m.dir.path, core.ErrUnitNotFound)
	}
	c, err := m.current()
	if err != nil {
		return err
	}
	result, err := m.submit(ctx, c, op, name)
	if err != nil || result == nil {
		return err
	}
	m.jobQueued()
	if !m.goOwned(func() { m.watch(c, op, name, result) }) {
		m.jobDone()
	}
	return nil
}

// submit queues one job. The result channel is buffered: go-systemd delivers
// every job result from one goroutine, and an unread result would block the
// results of every other job. A nil channel means there is nothing to watch.
func (m *Manager) submit(ctx context.Context, c *conn, op jobOp, name string) (<-chan string, error) {
	result := make(chan string, 1)
	cctx, cancel := m.callCtx(ctx)
	defer cancel()
	var err error
	switch op {
	case opStart:
		_, err = c.sd.StartUnitContext(cctx, name, "replace", result)
	case opStop:
		_, err = c.sd.StopUnitContext(cctx, name, "replace", result)
	}
	if op == opStop && dbusErrorName(err) == errNoSuchUnit {
		return nil, nil
	}
	if err != nil {
		return nil, c.wrapCallErr(ctx, err, "%s %s", op, name)
	}
	return result, nil
}

// watch waits for one job's result and reports anything but success.
func (m *Manager) watch(c *conn, op jobOp, name string, result <-chan string) {
	defer m.jobDone()
	err := m.wait(m.ctx, c, op, name, result, m.cfg.JobTimeout)
	if err != nil && m.ctx.Err() == nil {
		m.cfg.Logger.Warn("systemd job did not succeed", "unit", name, "job", string(op), "err", err)
		m.wake()
	}
}

// wait blocks until the job's result arrives, the connection drops, JobTimeout
// passes or ctx ends, and returns nil only for a job that is done.
func (m *Manager) wait(ctx context.Context, c *conn, op jobOp, name string, result <-chan string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-result:
		if r != jobResultDone {
			return fmt.Errorf("systemd: %s job for %s finished with result %q", op, name, r)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("systemd: %s job for %s: connection lost before it finished: %w", op, name, core.ErrUnavailable)
	case <-t.C:
		return fmt.Errorf("systemd: %s job for %s still running after %v", op, name, timeout)
	case <-ctx.Done():
		return fmt.Errorf("systemd: %s job for %s: %w", op, name, ctx.Err())
	}
}

// jobQueued and jobDone count the jobs being watched, for Settle.
func (m *Manager) jobQueued() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == 0 {
		m.idle = make(chan struct{})
	}
	m.pending++
}

func (m *Manager) jobDone() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending--
	if m.pending == 0 {
		close(m.idle)
	}
}
