package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/backends/fakesystemd"
	"github.com/fleet-rebuild/fleet/backends/systemd"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/daemon/config"
)

// embeddedCompaction keeps the embedded etcd's history short, so its
// database stays small however long fleetd runs.
const embeddedCompaction = time.Hour

// startEmbedded starts the single-machine default etcd in data_dir/etcd.
func startEmbedded(ctx context.Context, cfg config.Config, log *slog.Logger) (*etcd.Embedded, error) {
	srv, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{
		Dir:                 filepath.Join(cfg.DataDir, "etcd"),
		Name:                "fleet",
		ClientURL:           cfg.EmbeddedEtcdClientURL,
		PeerURL:             cfg.EmbeddedEtcdPeerURL,
		CompactionRetention: embeddedCompaction,
		Logger:              zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	return srv, nil
}

// unitManager is the machine's unit manager with what fleetd needs besides
// core.UnitManager: a background loop (the fake's clock) and Close.
type unitManager interface {
	core.UnitManager
	run(ctx context.Context)
	fake() bool
	Close() error
}

// realSystemd is systemd over D-Bus.
type realSystemd struct{ *systemd.Manager }

func (realSystemd) run(context.Context) {}
func (realSystemd) fake() bool          { return false }

// fakeSystemd is the in-memory fake on the wall clock: nothing really runs.
type fakeSystemd struct{ *fakesystemd.RealTime }

func (f fakeSystemd) run(ctx context.Context) { f.RealTime.Run(ctx) }
func (fakeSystemd) fake() bool                { return true }
func (fakeSystemd) Close() error              { return nil }

// openUnitManager opens the configured unit manager.
func openUnitManager(ctx context.Context, cfg config.Config, log *slog.Logger) (unitManager, error) {
	if cfg.UnitManager == config.ManagerFake {
		log.Warn("unit_manager=fake: NO UNIT REALLY RUNS ON THIS MACHINE; an in-memory fake systemd stands in for scale tests (metadata fleet-unit-manager=fake says so)")
		return fakeSystemd{fakesystemd.NewRealTime(fakesystemd.New(fakesystemd.WallClock{}))}, nil
	}
	scope := systemd.ScopeSystem
	if cfg.SystemdUser {
		scope = systemd.ScopeUser
	}
	m, err := systemd.Open(ctx, systemd.Config{Scope: scope, UnitDir: cfg.UnitsDirectory, Logger: log.With("component", "systemd")})
	if err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	return realSystemd{m}, nil
}

// watchdogInterval is systemd's WatchdogSec for this process, or 0.
func watchdogInterval() time.Duration {
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}
