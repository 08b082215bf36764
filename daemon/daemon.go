// Package daemon is fleetd: one machine's agent (and, unless disabled, an
// engine) against etcd and a unit manager, with the HTTP API. It owns every
// resource it opens — the data directory lock, the embedded etcd if any, the
// etcd client, the unit manager, the listeners — and the driver owns the
// loops.
//
//	d, err := daemon.Start(ctx, daemon.Options{Config: cfg, Version: v, Logger: log})
//	...
//	err = d.Reload(ctx, newCfg) // SIGHUP
//	err = d.Stop(ctx)          // SIGTERM: drain or detach, as configured
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/driver"
)

// Options are what Start needs besides the configuration.
type Options struct {
	Config  config.Config
	Version string
	// Logger receives everything fleetd logs; Level, if set, is adjusted to
	// the verbosity option (also on reload).
	Logger *slog.Logger
	Level  *slog.LevelVar
	// Listeners are API listeners handed over by systemd socket activation;
	// when empty, fleetd listens on api_socket and api_tcp itself.
	Listeners []net.Listener
	// Notify sends a state to the service manager (sd_notify); nil: none.
	Notify func(state string)
}

// Daemon is a running fleetd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	machine core.MachineState
	session string

	data    *dataDir
	etcd    *etcd.Embedded
	cli     *clientv3.Client
	reg     *etcd.Registry
	units   unitManager
	metrics *metrics
	driver  *driver.Driver
	running atomic.Pointer[driver.Driver] // the driver, for the watchdog and the API's availability
	http    *httpServer
	access  *access // the API's TLS and roles, fixed at start
	api     atomic.Pointer[http.Handler]

	bg     sync.WaitGroup
	bgCtx  context.Context // ends when Stop begins closing components
	stopBG context.CancelFunc
	errc   chan error

	mu      sync.Mutex // serializes Reload and Stop
	cfg     config.Config
	stopped bool
}

// Start opens everything in order and starts the loops and the API. On error
// it closes what it opened.
func Start(ctx context.Context, opts Options) (_ *Daemon, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = "unknown"
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	setLevel(opts.Level, cfg.Verbosity)
	d := &Daemon{opts: opts, log: opts.Logger, cfg: cfg, metrics: newMetrics(), errc: make(chan error, 4)}
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	d.bgCtx, d.stopBG = bgCtx, stopBG
	defer func() {
		if err != nil {
			d.closeAll(context.WithoutCancel(ctx))
		}
	}()
	id, err := readMachineID(cfg.MachineIDFile)
	if err != nil {
		return nil, err
	}
	if d.data, err = openDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if d.session, err = d.data.session(); err != nil {
		return nil, err
	}
	if err := d.openRegistry(ctx); err != nil {
		return nil, err
	}
	if d.units, err = openUnitManager(ctx, cfg, d.log); err != nil {
		return nil, err
	}
	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.units.run(bgCtx) }()
	d.machine = machineState(id, cfg, opts.Version, d.units.fake())
	if err := d.startDriver(ctx); err != nil {
		return nil, err
	}
	if d.http, err = d.serveHTTP(); err != nil {
		return nil, err
	}
	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.watchdog(bgCtx) }()
	d.log.Info("fleetd started", "machine", id, "version", opts.Version, "engine", !cfg.DisableEngine, "unit_manager", cfg.UnitManager, "agent_fence_grace", cfg.AgentFenceGrace)
	opts.Notify("READY=1\nSTATUS=fleetd running as machine " + id)
	return d, nil
}

// Err delivers a fatal error of a background component (the embedded etcd
// failing, an API listener closing); the caller then stops the daemon.
func (d *Daemon) Err() <-chan error { return d.errc }

// MachineID is this machine's ID; Session its fleetd session.
func (d *Daemon) MachineID() string { return d.machine.ID }

// EtcdEndpoints are the client URLs of the etcd this daemon uses.
func (d *Daemon) EtcdEndpoints() []string {
	if d.etcd != nil {
		return d.etcd.Endpoints()
	}
	return d.cfg.EtcdServers
}

// APIAddrs are the addresses the API listens on.
func (d *Daemon) APIAddrs() []net.Addr { return d.http.addrs() }

// Stop stops fleetd as its shutdown_mode says (drain or detach).
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	drain := d.cfg.ShutdownMode == config.ShutdownDrain
	d.mu.Unlock()
	return d.StopMode(ctx, drain)
}

// StopMode stops fleetd: the API first, then the loops (the engine resigns; with
// drain the machine's units are removed and the machine leaves the cluster at
// once), then everything opened, in reverse order.
func (d *Daemon) StopMode(ctx context.Context, drain bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	d.stopped = true
	mode := "detach"
	if drain {
		mode = "drain"
	}
	d.opts.Notify("STOPPING=1\nSTATUS=fleetd stopping (" + mode + ")")
	d.log.Info("fleetd stopping", "mode", mode)
	var errs []error
	if d.http != nil {
		errs = append(errs, d.http.shutdown(ctx))
		d.http = nil
	}
	if d.driver != nil {
		d.running.Store(nil)
		errs = append(errs, d.driver.Stop(ctx, drain))
		d.driver = nil
	}
	errs = append(errs, d.closeAll(ctx))
	return errors.Join(errs...)
}

// closeAll closes what Start opened, in reverse order.
func (d *Daemon) closeAll(ctx context.Context) error {
	var errs []error
	if d.stopBG != nil {
		d.stopBG()
		d.bg.Wait()
	}
	if d.units != nil {
		errs = append(errs, d.units.Close())
	}
	if d.cli != nil {
		errs = append(errs, d.cli.Close())
	}
	if d.etcd != nil {
		errs = append(errs, d.etcd.Close())
	}
	if d.data != nil {
		errs = append(errs, d.data.close())
	}
	return errors.Join(errs...)
}

// openRegistry starts the embedded etcd when no servers are configured, dials
// etcd and makes the registry.
func (d *Daemon) openRegistry(ctx context.Context) error {
	cfg := d.cfg
	endpoints := cfg.EtcdServers
	if cfg.Embedded() {
		srv, err := startEmbedded(ctx, cfg, d.log)
		if err != nil {
			return err
		}
		d.etcd = srv
		endpoints = srv.Endpoints()
		d.log.Info("embedded etcd serving clients", "url", endpoints[0], "dir", srv.Config().Dir)
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			select {
			case err, ok := <-srv.Err():
				if ok && err != nil {
					d.fail(fmt.Errorf("embedded etcd: %w", err))
				}
			case <-d.bgCtx.Done():
			}
		}()
	}
	cli, err := etcd.Dial(ctx, etcd.ClientConfig{
		Endpoints: endpoints,
		CAFile:    cfg.EtcdCAFile, CertFile: cfg.EtcdCertFile, KeyFile: cfg.EtcdKeyFile,
		Username: cfg.EtcdUsername, Password: cfg.EtcdPassword,
		DialOptions: d.metrics.etcdInterceptors(),
	})
	if err != nil {
		return err
	}
	d.cli = cli
	reg, err := etcd.New(cli, etcd.WithPrefix(cfg.EtcdKeyPrefix), etcd.WithRequestTimeout(cfg.EtcdRequestTimeout),
		etcd.WithLogger(d.log.With("component", "registry")))
	if err != nil {
		return err
	}
	if err := reg.CheckAccess(ctx); err != nil {
		return err
	}
	d.reg = reg
	d.metrics.watchSkipped(reg.SkippedValues)
	return nil
}

// fail reports a fatal background error once.
func (d *Daemon) fail(err error) {
	select {
	case d.errc <- err:
	default:
	}
}

// startDriver makes the agent and engine and starts the loops. If another
// live fleetd holds this machine ID, it retries until a TTL has passed (a
// crashed predecessor's presence expires by then) and then gives up.
func (d *Daemon) startDriver(ctx context.Context) error {
	cfg := d.cfg
	agent, err := core.NewAgent(core.AgentConfig{Machine: d.machine, Session: d.session, TTL: cfg.AgentTTL, ExternalPresence: true,
		Resync: driver.DefaultEngineResync, FenceGrace: cfg.AgentFenceGrace}, d.reg, d.units)
	if err != nil {
		return err
	}
	engine, err := d.newEngine(cfg)
	if err != nil {
		return err
	}
	dcfg := driver.Config{
		Registry: d.reg, Units: d.units, Agent: agent, Engine: engine,
		Machine: d.machine, Session: d.session, TTL: cfg.AgentTTL,
		DisableWatches: cfg.DisableWatches, Poll: driverPoll(cfg),
		Logger: d.log, Observer: d.metrics, FenceGrace: cfg.AgentFenceGrace,
	}
	deadline := time.Now().Add(cfg.AgentTTL + time.Second)
	for {
		d.driver, err = driver.Start(ctx, dcfg)
		if !errors.Is(err, core.ErrMachineConflict) || time.Now().After(deadline) {
			break
		}
		d.log.Warn("another fleetd holds this machine ID; waiting for its presence to expire", "machine", d.machine.ID, "ttl", cfg.AgentTTL)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.AgentTTL / 4):
		}
	}
	if errors.Is(err, core.ErrMachineConflict) {
		return fmt.Errorf("machine ID %s is held by another live fleetd (a second fleetd on this machine, or another machine with the same %s): %w", d.machine.ID, cfg.MachineIDFile, err)
	}
	if err == nil {
		d.running.Store(d.driver)
	}
	return err
}

// newEngine makes this machine's engine, or nil with disable_engine.
func (d *Daemon) newEngine(cfg config.Config) (*core.Engine, error) {
	if cfg.DisableEngine {
		return nil, nil
	}
	return core.NewEngine(core.EngineConfig{ID: d.machine.ID, Session: d.session, LeaseTTL: cfg.EngineLeaseTTL()}, d.reg)
}

// driverPoll is the pass interval without watches: fleet's agent ran every 5 s
// and its engine every engine_reconcile_interval.
func driverPoll(cfg config.Config) time.Duration {
	return min(cfg.EngineReconcileInterval, driver.DefaultPoll)
}

// machineState is what this machine announces.
func machineState(id string, cfg config.Config, version string, fake bool) core.MachineState {
	ip := cfg.PublicIP
	if ip == "" {
		ip = detectPublicIP()
	}
	md := map[string]string{}
	for k, v := range cfg.Metadata {
		md[k] = v
	}
	if fake {
		md["fleet-unit-manager"] = "fake"
	}
	if len(md) == 0 {
		md = nil
	}
	return core.MachineState{ID: id, PublicIP: ip, Metadata: md, Capabilities: core.Capabilities{DisableEngine: cfg.DisableEngine}, Version: version}
}

// watchdog pings systemd's watchdog at half its interval while the presence
// is healthy, and keeps STATUS current.
func (d *Daemon) watchdog(ctx context.Context) {
	every := watchdogInterval()
	if every <= 0 {
		return
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.healthy(); err != nil {
			d.opts.Notify("STATUS=unhealthy: " + err.Error())
			continue
		}
		d.opts.Notify("WATCHDOG=1")
	}
}

// healthy is nil while the driver keeps the presence renewed.
func (d *Daemon) healthy() error {
	drv := d.running.Load()
	if drv == nil {
		return errStopped
	}
	return drv.Healthy()
}

func setLevel(v *slog.LevelVar, verbosity int) {
	if v == nil {
		return
	}
	if verbosity > 0 {
		v.Set(slog.LevelDebug)
	} else {
		v.Set(slog.LevelInfo)
	}
}

// httpServer is the API's HTTP servers, one per listener.
type httpServer struct {
	servers   []*http.Server
	listeners []net.Listener
	cleanup   []func() error
}

func (s *httpServer) addrs() []net.Addr {
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

func (s *httpServer) shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	for _, c := range s.cleanup {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}
