package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/daemon/config"
)

// Reload applies a new configuration (SIGHUP). Only options a running fleetd
// can take may differ (verbosity, metadata, public_ip, token_limit,
// disable_engine, shutdown_mode); if any other differs, nothing is applied
// and the error names them. Unlike fleet v1.0.0, whose reload left the old
// server running beside the new one, the running components are adjusted in
// place.
func (d *Daemon) Reload(ctx context.Context, cfg config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return errStopped
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("reload refused, nothing changed: %w", err)
	}
	changed, restart := config.Changed(d.cfg, cfg)
	if len(restart) > 0 {
		return fmt.Errorf("reload refused, nothing changed: %s cannot change while fleetd runs; restart it", strings.Join(restart, ", "))
	}
	if len(changed) == 0 {
		d.log.Info("reload: nothing changed")
		return nil
	}
	var engine *core.Engine
	engineChanged := cfg.DisableEngine != d.cfg.DisableEngine
	if engineChanged && !cfg.DisableEngine {
		e, err := d.newEngine(cfg)
		if err != nil {
			return fmt.Errorf("reload refused, nothing changed: %w", err)
		}
		engine = e
	}
	machine := machineState(d.machine.ID, cfg, d.opts.Version, d.units.fake())
	if engineChanged {
		if err := d.driver.SetEngine(ctx, engine); err != nil {
			return fmt.Errorf("reload: engine: %w", err)
		}
	}
	if err := d.driver.SetMachine(machine); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	setLevel(d.opts.Level, cfg.Verbosity)
	d.machine, d.cfg = machine, cfg
	d.setAPI(cfg)
	d.log.Info("reload: applied", "options", strings.Join(changed, ","))
	return nil
}
