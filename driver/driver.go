// Package driver runs fleet's core passes in production: it owns every
// goroutine, timer and wake-up of a running fleetd, the way the simulator
// drives the same passes in virtual time.
//
// Three goroutines, each with one job:
//
//   - presence renews the machine's presence every TTL/3, independent of the
//     other two, so that a slow systemd call or a long pass never lets the
//     machine's units be rescheduled while it is alive;
//   - the agent runs core.Agent passes when its registry scope or the unit
//     manager signals a change, when a pass asks for it (NextWake), or when the
//     presence was renewed after a gap (every state is then published again);
//   - the engine, if this machine runs one, runs full core.Engine passes when
//     its registry scope changes and renews its lease (core.Engine.KeepLease)
//     on its timer without reading the cluster, so an idle cluster costs lease
//     keep-alives only; a full pass also runs on gaining leadership and at
//     least every EngineResync.
//
// With self-fencing (FenceGrace) a fourth goroutine watches the time since the
// last successful renewal was sent: once it exceeds the grace, it cancels the
// agent's pass in progress (blocked, maybe, on an unreachable registry) and
// wakes the agent, whose next pass stops the machine's units through the unit
// manager alone (core.Agent fences); a renewal that succeeds again wakes the
// agent to unfence. The agent stays owned by its own goroutine.
//
// With DisableWatches no registry watch is made and the passes run every Poll
// instead (fleet's disable_watches).
//
//	d, err := driver.Start(ctx, driver.Config{...})
//	...
//	err = d.Stop(ctx, true) // drain: remove this machine's units and leave
package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// Defaults of the intervals.
const (
	DefaultEngineResync = 10 * time.Minute
	DefaultPoll         = 5 * time.Second
	DefaultCoalesce     = 10 * time.Millisecond
)

// Config is what a Driver runs.
type Config struct {
	Registry core.Registry
	Units    core.UnitManager
	// Agent is this machine's agent, made with ExternalPresence: the driver
	// renews the presence.
	Agent *core.Agent
	// Engine is this machine's engine, or nil if it runs none.
	Engine *core.Engine
	// Machine is the record announced for this machine; Session and TTL are
	// the agent's.
	Machine core.MachineState
	Session string
	TTL     time.Duration
	// EngineResync bounds the time between full engine passes when nothing
	// wakes the engine (DefaultEngineResync if zero).
	EngineResync time.Duration
	// DisableWatches: no registry watches; passes run every Poll
	// (DefaultPoll if zero).
	DisableWatches bool
	Poll           time.Duration
	// Coalesce is how long a pass waits after a wake-up for more changes to
	// arrive, so that bursts are handled in one pass (DefaultCoalesce if zero).
	Coalesce time.Duration
	// Logger receives what the passes did; nil discards.
	Logger *slog.Logger
	// Observer, if set, is told about every pass and heartbeat (for metrics).
	Observer Observer
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// FenceGrace is the agent's AgentConfig.FenceGrace: when positive, the
	// driver interrupts a pass still running once the grace has passed since
	// the last successful renewal was sent, so that the agent fences without
	// waiting for a registry that does not answer.
	FenceGrace time.Duration
}

// Observer is told what the loops did. Its methods are called from the loops'
// goroutines and must not block.
type Observer interface {
	EnginePass(full bool, res core.EngineResult, err error, took time.Duration)
	AgentPass(res core.AgentResult, err error, took time.Duration)
	Heartbeat(err error)
}

func (c *Config) defaults() error {
	switch {
	case c.Registry == nil || c.Units == nil || c.Agent == nil:
		return errors.New("driver: Registry, Units and Agent are required")
	case c.Machine.ID == "" || c.Session == "":
		return errors.New("driver: Machine.ID and Session are required")
	case c.TTL <= 0:
		return fmt.Errorf("driver: TTL %v is not positive", c.TTL)
	case c.FenceGrace < 0:
		return fmt.Errorf("driver: FenceGrace %v is negative", c.FenceGrace)
	}
	if c.EngineResync <= 0 {
		c.EngineResync = DefaultEngineResync
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.Coalesce <= 0 {
		c.Coalesce = DefaultCoalesce
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Driver runs the loops of one fleetd. Its methods are safe for concurrent use.
type Driver struct {
	cfg    Config
	ctx    context.Context // the loops' context
	cancel context.CancelFunc
	loops  sync.WaitGroup

	machine atomic.Pointer[core.MachineState]
	// lastBeat is when the presence was last renewed, as cfg.Now read it: a
	// time.Time keeps time.Now's monotonic reading, so a jump of the
	// real-time clock changes no age measured from it.
	lastBeat atomic.Pointer[time.Time]
	// lastSent is when the last successful renewal was sent, with the
	// clock's monotonic reading: a jump of the wall clock neither fences
	// the machine nor delays its fence.
	lastSent  atomic.Pointer[time.Time]
	republish atomic.Bool // the agent must publish every state again
	beatNow   chan struct{}
	agentKick chan struct{}
	renewed   chan struct{} // wakes the fence watch after a successful renewal

	passMu     sync.Mutex
	cancelPass context.CancelFunc // ends the agent's pass in progress

	engineMu sync.Mutex
	engine   *engineLoop
	stopped  bool
}

// Start announces the machine (failing at once if another live fleetd holds
// its ID, or the registry cannot be reached) and starts the loops.
func Start(ctx context.Context, cfg Config) (*Driver, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	sent := cfg.Now()
	if err := cfg.Registry.Heartbeat(ctx, cfg.Machine, cfg.Session, cfg.TTL); err != nil {
		return nil, fmt.Errorf("driver: announce machine %s: %w", cfg.Machine.ID, err)
	}
	d := &Driver{cfg: cfg, beatNow: make(chan struct{}, 1), agentKick: make(chan struct{}, 1), renewed: make(chan struct{}, 1)}
	m := cfg.Machine
	d.machine.Store(&m)
	start := cfg.Now()
	d.lastBeat.Store(&start)
	d.lastSent.Store(&sent)
	d.republish.Store(true)
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	d.loops.Add(2)
	go d.presenceLoop()
	go d.agentLoop()
	if cfg.FenceGrace > 0 {
		d.loops.Add(1)
		go d.fenceLoop()
	}
	if cfg.Engine != nil {
		d.engine = d.startEngine(cfg.Engine)
	}
	return d, nil
}

// Healthy reports an error when the machine's presence has not been renewed
// for a TTL: the cluster may consider it gone.
func (d *Driver) Healthy() error {
	if age := d.cfg.Now().Sub(*d.lastBeat.Load()); age > d.cfg.TTL {
		return fmt.Errorf("presence not renewed for %v (TTL %v)", age.Round(time.Millisecond), d.cfg.TTL)
	}
	return nil
}

// SetMachine announces a changed record for this machine (new metadata or
// address) at once.
func (d *Driver) SetMachine(m core.MachineState) error {
	if m.ID != d.cfg.Machine.ID {
		return fmt.Errorf("driver: machine ID cannot change from %s to %s", d.cfg.Machine.ID, m.ID)
	}
	d.machine.Store(&m)
	kick(d.beatNow)
	kick(d.agentKick)
	return nil
}

// SetEngine starts e as this machine's engine, or with nil stops the running
// one (resigning its lease).
func (d *Driver) SetEngine(ctx context.Context, e *core.Engine) error {
	d.engineMu.Lock()
	defer d.engineMu.Unlock()
	if d.stopped {
		return errors.New("driver: stopped")
	}
	if d.engine != nil {
		if err := d.engine.stop(ctx); err != nil {
			return err
		}
		d.engine = nil
	}
	if e != nil {
		d.engine = d.startEngine(e)
	}
	return nil
}

// Stop ends the loops, resigns the engine's lease, and with drain removes
// every unit fleet runs on this machine and leaves the cluster at once
// (core.Agent.Purge); without drain (detach) the units keep running and the
// presence expires by its TTL, to be taken back by a restarted fleetd with the
// same session.
func (d *Driver) Stop(ctx context.Context, drain bool) error {
	d.engineMu.Lock()
	d.stopped = true
	var errs []error
	if d.engine != nil {
		errs = append(errs, d.engine.stop(ctx))
		d.engine = nil
	}
	d.engineMu.Unlock()
	d.cancel()
	done := make(chan struct{})
	go func() { d.loops.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("driver: loops did not stop: %w", ctx.Err())
	}
	if drain {
		errs = append(errs, d.cfg.Agent.Purge(ctx))
	}
	return errors.Join(errs...)
}

// kick wakes a loop, coalescing with a wake-up it has not taken yet.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

type nopObserver struct{}

func (nopObserver) EnginePass(bool, core.EngineResult, error, time.Duration) {}
func (nopObserver) AgentPass(core.AgentResult, error, time.Duration)         {}
func (nopObserver) Heartbeat(error)                                          {}
