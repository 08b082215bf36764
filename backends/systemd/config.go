package systemd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Scope says which systemd manager fleet drives.
type Scope string

// The scopes. ScopeAuto picks the system manager when running as root on a host
// booted with systemd, and otherwise the user manager of $XDG_RUNTIME_DIR.
const (
	ScopeAuto   Scope = ""
	ScopeSystem Scope = "system"
	ScopeUser   Scope = "user"
)

// Default paths and intervals, used where Config leaves a field zero.
const (
	// SystemSocket is the system manager's private socket.
	SystemSocket = "/run/systemd/private"
	// SystemUnitDir is fleet's unit directory for the system manager.
	SystemUnitDir = "/run/fleet/units"
	// SystemLinkDir is where the system manager keeps runtime links.
	SystemLinkDir = "/run/systemd/system"

	DefaultCallTimeout    = 30 * time.Second
	DefaultJobTimeout     = 5 * time.Minute
	DefaultStopWait       = 5 * time.Second
	DefaultResyncInterval = 5 * time.Minute
	DefaultReconnectMax   = 5 * time.Second
)

// Config says how to reach a systemd manager and where fleet keeps its units.
// Every zero field gets a default from the scope.
type Config struct {
	// Scope chooses the system or a user manager; ScopeAuto decides by itself.
	Scope Scope
	// Socket is the manager's private D-Bus socket (no bus daemon is involved):
	// /run/systemd/private for the system manager, $XDG_RUNTIME_DIR/systemd/private
	// for a user manager.
	Socket string
	// UnitDir is the directory fleet owns and writes unit files into:
	// /run/fleet/units for the system manager, $XDG_RUNTIME_DIR/fleet/units for a
	// user manager. It must not be one of the manager's own unit directories.
	UnitDir string
	// LinkDir is where the manager puts the runtime links that fleet makes to
	// its files (and the .wants links of units it enables): /run/systemd/system
	// for the system manager, "user" next to the socket for a user manager
	// ($XDG_RUNTIME_DIR/systemd/user). Open reads it to find the links of units
	// removed before a crash; fleet never writes there itself.
	LinkDir string
	// CallTimeout bounds each D-Bus call, on top of the caller's context,
	// and each write to the manager's socket. A call that gets no answer
	// within it fails with an error wrapping core.ErrUnavailable, as when the
	// manager cannot be reached; a write that cannot finish within it (a hung
	// manager stopped reading) also drops the connection, which is then
	// re-established in the background.
	CallTimeout time.Duration
	// JobTimeout bounds how long a queued start or stop job is watched, and how
	// long RemoveUnit waits for its stop job.
	JobTimeout time.Duration
	// StopWait bounds how long RemoveUnit waits for its stop job; past it the
	// file is kept, the job goes on, and a later RemoveUnit finishes. Keep it
	// well under the agent TTL / 3.
	StopWait time.Duration
	// ResyncInterval is the safety net: Notify subscribers are woken this often
	// even when no D-Bus signal arrived.
	ResyncInterval time.Duration
	// ReconnectMax caps the backoff between reconnection attempts after the
	// manager restarted or the connection dropped.
	ReconnectMax time.Duration
	// Logger receives what happens in the background (job results, reconnects).
	// Nil discards it.
	Logger *slog.Logger
}

// resolve fills in the defaults. It reads the environment and the file system
// only to choose the scope and paths.
func (c Config) resolve() (Config, error) {
	if c.Scope == ScopeAuto {
		scope, err := detectScope(c.Socket)
		if err != nil {
			return c, err
		}
		c.Scope = scope
	}
	switch c.Scope {
	case ScopeSystem:
		if c.Socket == "" {
			c.Socket = SystemSocket
		}
		if c.UnitDir == "" {
			c.UnitDir = SystemUnitDir
		}
		if c.LinkDir == "" {
			c.LinkDir = SystemLinkDir
		}
	case ScopeUser:
		rt := os.Getenv("XDG_RUNTIME_DIR")
		if (c.Socket == "" || c.UnitDir == "") && rt == "" {
			return c, errors.New("systemd: user scope needs XDG_RUNTIME_DIR, or both Socket and UnitDir")
		}
		if c.Socket == "" {
			c.Socket = filepath.Join(rt, "systemd", "private")
		}
		if c.UnitDir == "" {
			c.UnitDir = filepath.Join(rt, "fleet", "units")
		}
		if c.LinkDir == "" {
			c.LinkDir = filepath.Join(filepath.Dir(c.Socket), "user")
		}
	default:
		return c, fmt.Errorf("systemd: unknown scope %q (want %q or %q)", c.Scope, ScopeSystem, ScopeUser)
	}
	if !filepath.IsAbs(c.UnitDir) {
		return c, fmt.Errorf("systemd: unit directory %q is not an absolute path", c.UnitDir)
	}
	if !filepath.IsAbs(c.LinkDir) {
		return c, fmt.Errorf("systemd: link directory %q is not an absolute path", c.LinkDir)
	}
	c.UnitDir, c.LinkDir = filepath.Clean(c.UnitDir), filepath.Clean(c.LinkDir)
	c.CallTimeout = orDefault(c.CallTimeout, DefaultCallTimeout)
	c.JobTimeout = orDefault(c.JobTimeout, DefaultJobTimeout)
	c.StopWait = min(orDefault(c.StopWait, DefaultStopWait), c.JobTimeout)
	c.ResyncInterval = orDefault(c.ResyncInterval, DefaultResyncInterval)
	c.ReconnectMax = orDefault(c.ReconnectMax, DefaultReconnectMax)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// detectScope chooses the system manager when running as root with its private
// socket present, else a user manager when $XDG_RUNTIME_DIR has one.
func detectScope(socket string) (Scope, error) {
	if socket == SystemSocket || (socket == "" && os.Geteuid() == 0 && isSocket(SystemSocket)) {
		return ScopeSystem, nil
	}
	if socket != "" {
		return ScopeUser, nil
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && isSocket(filepath.Join(rt, "systemd", "private")) {
		return ScopeUser, nil
	}
	return "", fmt.Errorf("systemd: no manager found: neither %s (as root) nor $XDG_RUNTIME_DIR/systemd/private exists; set Scope and Socket", SystemSocket)
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
