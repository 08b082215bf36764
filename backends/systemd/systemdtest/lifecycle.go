package systemdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/fleet-rebuild/fleet/internal/cgroups"
)

// killTimeout bounds how long killing what is left in a cgroup may take.
const killTimeout = 5 * time.Second

// Stop stops the manager (SIGTERM, so it stops its units; SIGKILL for whatever
// is left after StopTimeout), kills any process still in its cgroups, removes
// the cgroups deepest first and deletes its runtime directory. Safe to call
// more than once.
func (um *UserManager) Stop() error {
	um.mu.Lock()
	if um.done {
		um.mu.Unlock()
		return nil
	}
	um.done = true
	um.mu.Unlock()
	err := um.terminate(syscall.SIGTERM, um.opts.StopTimeout)
	if len(um.cgroups) > 0 {
		err = errors.Join(err, cgroups.Kill(um.cgroups, killTimeout), cgroups.Remove(um.cgroups))
	}
	if rerr := os.RemoveAll(um.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("systemdtest: %w", rerr))
	}
	return err
}

// Crash kills the manager and every process in its cgroups at once, as if the
// machine lost it, leaving its runtime directory (and so fleet's files and the
// manager's runtime links) in place for Restart.
func (um *UserManager) Crash() error {
	if err := um.live(); err != nil {
		return err
	}
	return errors.Join(um.terminate(syscall.SIGKILL, 0), cgroups.Kill(um.cgroups, killTimeout))
}

// Restart stops the manager if it runs (as Stop does, but keeping its runtime
// directory and cgroups) and starts a new one in the same place, waiting until
// it answers. Clients see their connection drop and must reconnect.
func (um *UserManager) Restart(ctx context.Context) error {
	if err := um.live(); err != nil {
		return err
	}
	if err := errors.Join(um.terminate(syscall.SIGTERM, um.opts.StopTimeout), cgroups.Kill(um.cgroups, killTimeout)); err != nil {
		return err
	}
	return um.launch(ctx)
}

func (um *UserManager) live() error {
	um.mu.Lock()
	defer um.mu.Unlock()
	if um.done {
		return errors.New("systemdtest: manager already stopped")
	}
	return nil
}

// terminate sends sig to the manager process, waits up to grace for it to exit,
// then kills it. A manager that is not running is left alone.
func (um *UserManager) terminate(sig syscall.Signal, grace time.Duration) error {
	um.mu.Lock()
	proc, exited := um.proc, um.exited
	um.mu.Unlock()
	if proc == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("systemdtest: signal manager %d: %w", proc.Pid, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
		return nil
	case <-t.C:
	}
	if err := proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("systemdtest: kill manager %d: %w", proc.Pid, err)
	}
	<-exited // a killed process is reaped at once
	return nil
}

// waitReady polls the private socket until the manager answers a D-Bus call,
// the manager exits, or ctx ends.
func waitReady(ctx context.Context, socket string, exited <-chan struct{}) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	lastErr := errors.New("socket not created yet")
	for {
		select {
		case <-exited:
			return fmt.Errorf("manager exited while starting (last: %v)", lastErr)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
		if _, err := os.Stat(socket); err != nil {
			continue
		}
		if lastErr = ping(ctx, socket); lastErr == nil {
			return nil
		}
	}
}

// ping asks the manager for its version over a direct connection to socket.
func ping(ctx context.Context, socket string) error {
	conn, err := dbus.Dial("unix:path="+dbus.EscapeBusAddressValue(socket), dbus.WithContext(ctx))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		return err
	}
	obj := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	var version string
	return obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Manager", "Version").Store(&version)
}

// Freeze stops the manager process (SIGSTOP) without touching its units, as
// a manager hung in a long operation: its socket still accepts connections,
// but no call is answered until Thaw. A test that freezes a manager thaws it
// before Stop, or Stop waits StopTimeout before killing it.
func (um *UserManager) Freeze() error { return um.signal(syscall.SIGSTOP) }

// Thaw lets a frozen manager run again (SIGCONT).
func (um *UserManager) Thaw() error { return um.signal(syscall.SIGCONT) }

// signal sends sig to the running manager process.
func (um *UserManager) signal(sig syscall.Signal) error {
	if err := um.live(); err != nil {
		return err
	}
	um.mu.Lock()
	proc, exited := um.proc, um.exited
	um.mu.Unlock()
	select {
	case <-exited:
		return errors.New("systemdtest: manager not running")
	default:
	}
	if err := proc.Signal(sig); err != nil {
		return fmt.Errorf("systemdtest: signal manager %d: %w", proc.Pid, err)
	}
	return nil
}
