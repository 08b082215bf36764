package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// Config describes a simulated cluster. Zero fields take fleet's defaults.
type Config struct {
	// Seed decides every random choice: event order, faults, generated units.
	Seed uint64
	// Backend makes the registry (default MemoryBackend).
	Backend BackendFactory
	// AgentTTL is the machine presence TTL (default 30 s).
	AgentTTL time.Duration
	// EngineLeaseTTL is the engine leadership TTL (default 10 s).
	EngineLeaseTTL time.Duration
	// NotifyDelay is how long a change takes to wake a watcher (default 10 ms).
	NotifyDelay time.Duration
	// JobDuration is how long a fake systemd job takes (default 100 ms).
	JobDuration time.Duration
	// MaxSkew bounds the clock offset drawn for each machine (default 0).
	MaxSkew time.Duration
	// CheckPlacementLimit bounds the cost of the least-loaded check: decisions are
	// checked against every machine while decisions × machines stays below it,
	// and sampled above (default 2,000,000).
	CheckPlacementLimit int
	// KeepTrace keeps the trace lines in memory (Trace); the hash is always kept.
	KeepTrace bool
	// Context, if set, interrupts the runs when it is done: RunUntil then
	// returns ErrInterrupted.
	Context context.Context
}

func (c *Config) defaults() {
	if c.Backend == nil {
		c.Backend = MemoryBackend
	}
	if c.AgentTTL == 0 {
		c.AgentTTL = 30 * time.Second
	}
	if c.EngineLeaseTTL == 0 {
		c.EngineLeaseTTL = 10 * time.Second
	}
	if c.NotifyDelay == 0 {
		c.NotifyDelay = 10 * time.Millisecond
	}
	if c.JobDuration == 0 {
		c.JobDuration = 100 * time.Millisecond
	}
	if c.CheckPlacementLimit == 0 {
		c.CheckPlacementLimit = 2_000_000
	}
}

// Machine is one simulated host: a fake systemd, and a fleetd made of an agent
// and, optionally, an engine.
type Machine struct {
	ID         string
	Metadata   map[string]string
	RunsEngine bool

	sd     *systemd
	starts *startLog
	// stopWatch cancels the Notify subscriptions of the running fleetd, whose
	// channels wake its agent (agentWake) and engine (engineWake).
	stopWatch   context.CancelFunc
	agentWake   <-chan struct{}
	engineWake  <-chan struct{}
	agent       *core.Agent
	engine      *core.Engine
	reg         core.Registry // its view, behind the registry faults
	session     int
	up          bool
	partitioned bool
	skew        time.Duration
	gen         int
	agentAt     time.Time
	engineAt    time.Time
	sdAt        time.Time
	lastBeat    time.Time
	stallUntil  time.Time
	// pauseWrite, if set, pauses the engine's next schedule write for that
	// long; pausedUntil is the end of the pause it is in (see
	// PauseEngineWrite).
	pauseWrite  time.Duration
	pausedUntil time.Time
	pausedPass  bool
}

// Up reports whether the machine is running.
func (m *Machine) Up() bool { return m.up }

// Cluster is a whole simulated fleet cluster in one process, driven by virtual
// time. It is not safe for concurrent use.
type Cluster struct {
	cfg      Config
	clock    *Clock
	rng      *rand.Rand
	backend  Backend
	queue    eventQueue
	seq      uint64
	machines []*Machine
	engines  []*Machine
	byID     map[string]*Machine
	client   core.Registry

	registryDown bool
	units        map[string]*SchedUnitRecord
	replacing    []string // units with Replaces; nil when it must be rebuilt
	leasing      leasing
	trace        tracer
	violations   []Violation
	stats        stats
	expiredAt    map[string]time.Time
	failovers    []Failover
	unplaceable  map[string]string
	// planned says a leader pass ran after the last change an engine must see,
	// so unplaceable is current.
	planned bool
	// unitsVersion counts the changes to units (userChange); checked is the
	// last schedule found sound (checkSchedule).
	unitsVersion uint64
	checked      checkedSchedule
	// lastRead is the checker's last read of the registry (snapshotForCheck).
	lastRead readSnapshot
	// beforePass is the schedule as the engine in this pass found it on taking
	// or renewing the lease.
	beforePass *checkSnapshot
	ctx        context.Context
	// interrupt is Config.Context's Done channel (nil: never).
	interrupt <-chan struct{}
	// opSeq orders user commands and accepted starts, for the convergence
	// check of units that ran and ended.
	opSeq uint64
	// regFaults are the registry faults injected now, drawn from faultRNG.
	// wakeDirty says the registry may have changed since the last
	// deliverWakeups: a write, an expiry, a machine booting or reconnecting.
	wakeDirty bool
	// enginesDirty says only the engines' scope may have changed (a machine
	// joined or expired): deliverWakeups drains the engines' channels alone.
	enginesDirty bool
	// pausing says an engine is paused in its write (PauseEngineWrite).
	pausing   bool
	regFaults RegistryFaults
	faultRNG  *rand.Rand
}

// SchedUnitRecord is what the simulator remembers of a submitted unit.
type SchedUnitRecord struct {
	core.SchedUnit
	Contents []byte
	// launchedSeq is the opSeq at which the user last set the unit launched.
	launchedSeq uint64
}

// New starts an empty cluster.
func New(cfg Config) (*Cluster, error) {
	cfg.defaults()
	c := &Cluster{
		cfg:         cfg,
		clock:       &Clock{now: Epoch},
		rng:         rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		faultRNG:    rand.New(rand.NewPCG(cfg.Seed^0x5851f42d4c957f2d, cfg.Seed)),
		byID:        map[string]*Machine{},
		units:       map[string]*SchedUnitRecord{},
		expiredAt:   map[string]time.Time{},
		unplaceable: map[string]string{},
		ctx:         context.Background(),
	}
	c.trace.keep = cfg.KeepTrace
	if cfg.Context != nil {
		c.interrupt = cfg.Context.Done()
	}
	b, err := cfg.Backend(c.clock)
	if err != nil {
		return nil, fmt.Errorf("sim: start backend: %w", err)
	}
	c.backend = b
	c.client = Intercept(&view{c: c, machine: &Machine{ID: "client", up: true}, base: b.Registry}, c.faultFuncs("client"))
	c.tracef("-", "cluster: seed %d, backend %s", cfg.Seed, b.Name)
	return c, nil
}

// Close ends the machines' subscriptions and releases the backend.
func (c *Cluster) Close() error {
	for _, m := range c.machines {
		m.unwatch()
	}
	return c.backend.Close()
}

// Now is the current virtual time.
func (c *Cluster) Now() time.Time { return c.clock.Now() }

// Elapsed is the virtual time since the start.
func (c *Cluster) Elapsed() time.Duration { return c.clock.Now().Sub(Epoch) }

// Rand is the cluster's seeded random source, for generators that must be
// reproducible from the same seed.
func (c *Cluster) Rand() *rand.Rand { return c.rng }

// Machines lists the machines, sorted by ID.
func (c *Cluster) Machines() []*Machine { return c.machines }

// Machine returns the machine with id, or nil.
func (c *Cluster) Machine(id string) *Machine { return c.byID[id] }

// AddMachine adds and boots a machine. With engine set its fleetd also runs an
// engine.
func (c *Cluster) AddMachine(id string, metadata map[string]string, engine bool) (*Machine, error) {
	if id == "" || c.byID[id] != nil || id == "client" {
		return nil, fmt.Errorf("sim: machine ID %q is empty or taken", id)
	}
	m := &Machine{ID: id, Metadata: metadata, RunsEngine: engine}
	if c.cfg.MaxSkew > 0 {
		m.skew = time.Duration(c.rng.Int64N(int64(2*c.cfg.MaxSkew))) - c.cfg.MaxSkew
	}
	m.reg = Intercept(&view{c: c, machine: m, base: c.backend.Registry}, c.faultFuncs(id))
	c.machines = insertSorted(c.machines, m)
	c.byID[id] = m
	if engine {
		c.engines = insertSorted(c.engines, m)
	}
	c.boot(m, true)
	c.tracef(id, "machine joins (engine=%t, metadata=%v, skew=%s)", engine, metadata, m.skew)
	return m, nil
}

// insertSorted inserts m into ms, kept sorted by ID.
func insertSorted(ms []*Machine, m *Machine) []*Machine {
	i := sort.Search(len(ms), func(i int) bool { return ms[i].ID >= m.ID })
	ms = append(ms, nil)
	copy(ms[i+1:], ms[i:])
	ms[i] = m
	return ms
}

// boot starts a machine's fleetd: a new agent and engine; with fresh set, a new
// systemd (the machine rebooted) and a new session.
func (c *Cluster) boot(m *Machine, fresh bool) {
	m.gen++
	m.up = true
	m.agentAt, m.engineAt, m.sdAt = time.Time{}, time.Time{}, time.Time{}
	if fresh {
		m.session++
		m.sd = newSystemd(skewed{c.clock, m.skew}, c.cfg.JobDuration)
	}
	c.watch(m)
	state := core.MachineState{ID: m.ID, Metadata: m.Metadata, Capabilities: core.Capabilities{DisableEngine: !m.RunsEngine}, Version: "sim"}
	session := fmt.Sprintf("%s/%d", m.ID, m.session)
	m.starts = newStartLog(c, m.sd)
	agent, err := core.NewAgent(core.AgentConfig{Machine: state, Session: session, TTL: c.cfg.AgentTTL}, m.reg, m.starts)
	if err != nil {
		panic(fmt.Sprintf("sim: %v (the cluster config was validated)", err))
	}
	m.agent = agent
	m.engine = nil
	if m.RunsEngine {
		engine, err := core.NewEngine(core.EngineConfig{ID: m.ID, Session: session, LeaseTTL: c.cfg.EngineLeaseTTL}, m.reg)
		if err != nil {
			panic(fmt.Sprintf("sim: %v (the cluster config was validated)", err))
		}
		m.engine = engine
		c.wakeEngine(m, c.clock.Now())
	}
	c.wakeAgent(m, c.clock.Now())
}
