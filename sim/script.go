package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// defaultUnit is the unit file `submit NAME` stores when given no input.
const defaultUnit = "[Service]\nExecStart=/bin/sleep infinity\n"

// Limits of the values a scenario may give: beyond them a run cannot fit in
// memory or in a sensible time, or the cluster cannot work (a presence TTL
// shorter than an agent pass).
const (
	// MaxScenarioMachines bounds the machines of a scenario's cluster.
	MaxScenarioMachines = 10_000
	// MaxScenarioStep bounds the virtual time of one run, converge, stall or
	// expect ... by=.
	MaxScenarioStep = 24 * time.Hour
)

// durationRanges are the accepted ranges of the cluster command's durations.
var durationRanges = map[string][2]time.Duration{
	"ttl":  {time.Second, MaxScenarioStep},
	"job":  {time.Millisecond, time.Hour},
	"skew": {0, time.Hour},
}

// ErrBackendFailed marks a cluster command whose registry backend could not
// start: a failure of the machine, not of the scenario.
var ErrBackendFailed = errors.New("sim: the backend failed")

// Script runs scenario commands against one simulated cluster. Scenario files
// (testdata/*.txt, examples/scenarios) are lists of such commands, each with its
// expected output, in the datadriven format:
//
//	cluster seed=1
//	----
//	add-machine m1 engine region=us
//	----
//	submit web.service
//	[Service]
//	ExecStart=/bin/sleep 1d
//	----
//	start web.service
//	----
//	run 5s
//	----
//	[     0.020s] m1     engine: schedule web.service to m1
//
// The commands are those of ScenarioCommands; docs/scenarios.md describes them.
type Script struct {
	c        *Cluster
	backends map[string]BackendFactory
	// backend, if set, is the backend every cluster command uses, whatever it names.
	backend string
	ctx     context.Context
	// failedSubmit keeps the error of each name whose last submit failed.
	failedSubmit map[string]string
	unmet        []string
}

// ScenarioCommands is the usage of every scenario command, one per line.
const ScenarioCommands = `cluster [seed=N] [ttl=D] [job=D] [skew=D] [backend=memory|etcd]
add-machine ID [engine] [KEY=VALUE...]
submit NAME...            (input: the unit file; none: a sleep service)
load|start|stop|unload|destroy NAME...
run D [verbose]
converge [max=D] [verbose]
list-units | list-machines | load-spread | check
crash|return|restart-fleetd|partition|reconnect|restart-systemd|fail-starts MACHINE
systemctl-stop|crash-unit MACHINE UNIT
stall-engine|pause-engine-write MACHINE D
registry-down | registry-up | heal
registry-faults [lose-reply=R] [slow-call=R] [drop-wakeup=R]
expect active [NAME...] [by=D] [verbose]
expect on|not-on NAME MACHINE
expect follows NAME PEER
expect restarts NAME max=N`

// NewScript returns an interpreter. backends maps the names accepted by
// `cluster backend=NAME` to factories; "memory" is always available.
func NewScript(backends map[string]BackendFactory) *Script {
	b := map[string]BackendFactory{"memory": MemoryBackend}
	for k, v := range backends {
		b[k] = v
	}
	return &Script{backends: b, ctx: context.Background(), failedSubmit: map[string]string{}}
}

// Cluster is the cluster the script built, or nil before `cluster`.
func (s *Script) Cluster() *Cluster { return s.c }

// Unmet is the expectations (expect ...) that were not met, one line each.
func (s *Script) Unmet() []string { return s.unmet }

// Close releases the cluster.
func (s *Script) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}

// Exec runs one command (its words) with its input and returns its output.
// Errors of fleet (a bad unit file, an invalid transition) are part of the
// output, as a user would see them. A malformed command (unknown, a word or
// option it does not take, a value out of range, a unit never submitted) is an
// error, and so is an interrupted run (ErrInterrupted).
func (s *Script) Exec(words []string, input string) (string, error) {
	if len(words) == 0 {
		return "", errors.New("empty command")
	}
	cmd, args := words[0], words[1:]
	if err := s.validate(cmd, args, input); err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	if cmd == "cluster" {
		return s.newCluster(args)
	}
	mark := s.c.TraceLen()
	out, err := s.exec(cmd, args, input)
	if err != nil && !errors.Is(err, ErrInterrupted) {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	if cmd == "run" || cmd == "converge" || (cmd == "expect" && args[0] == "active") {
		out = s.traceSince(mark, hasWord(args, "verbose")) + out
	}
	return out, err
}

// commandSpec is what a command accepts: positional words (min, max; max < 0
// for any number), words that may appear anywhere (flags), key=value options,
// and whether it reads an input.
type commandSpec struct {
	min, max int
	flags    []string
	keys     []string
	input    bool
}

var commandSpecs = map[string]commandSpec{
	"cluster":            {keys: []string{"seed", "ttl", "job", "skew", "backend"}},
	"submit":             {min: 1, max: -1, input: true},
	"load":               {min: 1, max: -1},
	"start":              {min: 1, max: -1},
	"stop":               {min: 1, max: -1},
	"unload":             {min: 1, max: -1},
	"destroy":            {min: 1, max: -1},
	"run":                {min: 1, max: 1, flags: []string{"verbose"}},
	"converge":           {flags: []string{"verbose"}, keys: []string{"max"}},
	"list-units":         {},
	"list-machines":      {},
	"load-spread":        {},
	"check":              {},
	"heal":               {},
	"registry-down":      {},
	"registry-up":        {},
	"registry-faults":    {keys: []string{"lose-reply", "slow-call", "drop-wakeup"}},
	"crash":              {min: 1, max: 1},
	"return":             {min: 1, max: 1},
	"restart-fleetd":     {min: 1, max: 1},
	"partition":          {min: 1, max: 1},
	"reconnect":          {min: 1, max: 1},
	"restart-systemd":    {min: 1, max: 1},
	"fail-starts":        {min: 1, max: 1},
	"systemctl-stop":     {min: 2, max: 2},
	"crash-unit":         {min: 2, max: 2},
	"stall-engine":       {min: 2, max: 2},
	"pause-engine-write": {min: 2, max: 2},
}

// validate refuses what the command does not take: an unknown command, a word
// or option it does not know, a repeated option, an input.
func (s *Script) validate(cmd string, args []string, input string) error {
	if cmd != "cluster" && s.c == nil {
		return errors.New("the first command must be cluster")
	}
	if cmd == "cluster" && s.c != nil {
		return errors.New("a scenario builds one cluster: a second cluster command is not allowed")
	}
	spec, ok := commandSpecs[cmd]
	switch {
	case cmd == "add-machine":
		spec = commandSpec{min: 1, max: 1, flags: []string{"engine"}}
	case cmd == "at":
		spec = commandSpec{min: 2, max: 3, keys: []string{"until", "for", "unit"}}
	case cmd == "expect":
		var err error
		if spec, err = expectSpec(args); err != nil {
			return err
		}
		args = args[1:]
	case !ok:
		return fmt.Errorf("unknown command (the commands are: %s)", commandNames())
	}
	if !spec.input && strings.TrimSpace(input) != "" {
		return errors.New("takes no input, but lines follow the command before \"----\"")
	}
	seen := map[string]bool{}
	npos := 0
	for _, a := range args {
		k, _, isKV := strings.Cut(a, "=")
		switch {
		case isKV && cmd == "add-machine":
			if k == "" {
				return fmt.Errorf("metadata %q has no key", a)
			}
		case isKV && !slices.Contains(spec.keys, k):
			if len(spec.keys) == 0 {
				return fmt.Errorf("unknown option %q: the command takes no options", a)
			}
			return fmt.Errorf("unknown option %q: want %s", a, strings.Join(spec.keys, "=, ")+"=")
		case !isKV && slices.Contains(spec.flags, a):
			k = a
		case !isKV:
			npos++
			if spec.max >= 0 && npos > spec.max {
				return fmt.Errorf("unexpected word %q", a)
			}
			continue
		}
		if seen[k] {
			return fmt.Errorf("%q is given twice", k)
		}
		seen[k] = true
	}
	if npos < spec.min {
		return fmt.Errorf("missing argument: want %d, got %d", spec.min, npos)
	}
	return nil
}

func commandNames() string {
	names := []string{"add-machine", "at", "expect"}
	for n := range commandSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// parseDuration reads the duration named what and checks it lies in [lo, hi].
func parseDuration(what, v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a duration (like 500ms, 30s or 1m30s)", what, v)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s %s out of range: want %s to %s", what, v, lo, hi)
	}
	return d, nil
}

// parseSeed reads a seed: a decimal number that fits 64 bits.
func parseSeed(v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("seed %q: want a whole number from 0 to %d", v, uint64(math.MaxUint64))
	}
	return n, nil
}

func (s *Script) newCluster(args []string) (string, error) {
	kv, _ := splitArgs(args)
	cfg := Config{KeepTrace: true, Context: s.ctx}
	var err error
	if v, ok := kv["seed"]; ok {
		if cfg.Seed, err = parseSeed(v); err != nil {
			return "", fmt.Errorf("cluster: %w", err)
		}
	}
	for key, dst := range map[string]*time.Duration{"ttl": &cfg.AgentTTL, "skew": &cfg.MaxSkew, "job": &cfg.JobDuration} {
		if v, ok := kv[key]; ok {
			r := durationRanges[key]
			if *dst, err = parseDuration(key, v, r[0], r[1]); err != nil {
				return "", fmt.Errorf("cluster: %w", err)
			}
		}
	}
	name := kv["backend"]
	if name == "" {
		name = "memory"
	}
	if _, ok := s.backends[name]; !ok {
		return "", fmt.Errorf("cluster: unknown backend %q, want %s", name, strings.Join(slices.Sorted(maps.Keys(s.backends)), " or "))
	}
	if s.backend != "" {
		name = s.backend
	}
	cfg.Backend = s.backends[name]
	if s.c, err = New(cfg); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBackendFailed, err)
	}
	return "", nil
}

// splitArgs separates key=value words from positional words.
func splitArgs(args []string) (map[string]string, []string) {
	kv := map[string]string{}
	var pos []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			kv[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	return kv, pos
}

func hasWord(args []string, w string) bool {
	for _, a := range args {
		if a == w {
			return true
		}
	}
	return false
}

// traceSince returns the trace lines since mark; agent lines only if verbose.
func (s *Script) traceSince(mark int, verbose bool) string {
	lines := s.c.Trace()
	if mark > len(lines) {
		return ""
	}
	var b strings.Builder
	for _, l := range lines[mark:] {
		if !verbose && (strings.Contains(l, " agent: ") || strings.Contains(l, " presence expired")) {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

func (s *Script) exec(cmd string, args []string, input string) (string, error) {
	c := s.c
	kv, pos := splitArgs(args)
	switch cmd {
	case "at":
		return s.at(args)
	case "add-machine":
		if len(c.machines) >= MaxScenarioMachines {
			return "", fmt.Errorf("more than %d machines", MaxScenarioMachines)
		}
		md := map[string]string{}
		for k, v := range kv {
			md[k] = v
		}
		_, err := c.AddMachine(pos[0], md, hasWord(pos[1:], "engine"))
		return "", err
	case "submit":
		body := input + "\n"
		if strings.TrimSpace(body) == "" {
			body = defaultUnit
		} else if len(pos) > 1 {
			return "", errors.New("one unit file as input, but more than one name")
		}
		var b strings.Builder
		for _, n := range pos {
			err := c.Submit(n, []byte(body))
			if err != nil && !errors.Is(err, core.ErrUnitExists) {
				s.failedSubmit[n] = err.Error()
			} else {
				delete(s.failedSubmit, n)
			}
			b.WriteString(userError(err))
		}
		return b.String(), nil
	case "load", "start", "stop", "unload", "destroy":
		if cmd == "load" || cmd == "start" {
			if err := s.submitted(pos); err != nil {
				return "", err
			}
		}
		var b strings.Builder
		for _, n := range pos {
			b.WriteString(userError(c.Command(core.Command(cmd), n)))
		}
		return b.String(), nil
	case "run":
		d, err := parseDuration("duration", pos[0], 0, MaxScenarioStep)
		if err != nil {
			return "", err
		}
		return s.runErr(c.RunFor(d))
	case "converge":
		max := 5 * time.Minute
		if v, ok := kv["max"]; ok {
			var err error
			if max, err = parseDuration("max", v, time.Millisecond, MaxScenarioStep); err != nil {
				return "", err
			}
		}
		_, err := c.RunUntilConverged(max, time.Second)
		return s.runErr(err)
	case "expect":
		return s.expect(args[0], args[1:])
	case "list-units":
		return c.ListUnits()
	case "list-machines":
		return c.ListMachines()
	case "load-spread":
		return s.loadSpread()
	case "check":
		return s.check(), nil
	case "heal":
		c.Heal()
		return "", nil
	case "registry-down", "registry-up":
		c.RegistryDown(cmd == "registry-down")
		return "", nil
	case "registry-faults":
		f, err := parseRegistryFaults(kv)
		if err != nil {
			return "", err
		}
		c.SetRegistryFaults(f)
		return "", nil
	}
	return s.execFault(cmd, pos)
}

// execFault runs the commands that act on one machine, which must exist.
func (s *Script) execFault(cmd string, pos []string) (string, error) {
	c := s.c
	if c.byID[pos[0]] == nil {
		return "", fmt.Errorf("no machine %q", pos[0])
	}
	one := func(f func(string) error) (string, error) {
		return userError(f(pos[0])), nil
	}
	two := func(f func(string, string) error) (string, error) {
		return userError(f(pos[0], pos[1])), nil
	}
	switch cmd {
	case "crash":
		return one(c.CrashMachine)
	case "return":
		return one(c.ReturnMachine)
	case "restart-fleetd":
		return one(c.RestartFleetd)
	case "partition":
		return one(func(id string) error { return c.Partition(id, true) })
	case "reconnect":
		return one(func(id string) error { return c.Partition(id, false) })
	case "restart-systemd":
		return one(c.RestartSystemd)
	case "fail-starts":
		return one(func(id string) error { return c.FailStarts(id, true) })
	case "systemctl-stop":
		return two(c.StopUnitBehindBack)
	case "crash-unit":
		return two(c.CrashUnit)
	case "stall-engine", "pause-engine-write":
		pause := c.StallEngine
		if cmd == "pause-engine-write" {
			pause = c.PauseEngineWrite
		}
		dur, err := parseDuration("duration", pos[1], time.Millisecond, MaxScenarioStep)
		if err != nil {
			return "", err
		}
		return userError(pause(pos[0], dur)), nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

// submitted refuses the names that were never submitted: the scenario must say
// which unit file it wants, if only the default one (submit NAME, no input).
func (s *Script) submitted(names []string) error {
	for _, n := range names {
		if _, ok := s.c.units[n]; ok {
			continue
		}
		if why, ok := s.failedSubmit[n]; ok {
			return fmt.Errorf("%s: its submit failed (%s); fix the unit file", n, why)
		}
		return fmt.Errorf("%s was never submitted: submit it first (submit %s with no input stores a sleep service)", n, n)
	}
	return nil
}

// runErr turns the error of running the simulation into output: a broken
// invariant is an output line, an interruption an error.
func (s *Script) runErr(err error) (string, error) {
	if errors.Is(err, ErrInterrupted) {
		return "", err
	}
	return userError(err), nil
}

// parseRegistryFaults reads lose-reply=, slow-call= and drop-wakeup= rates.
func parseRegistryFaults(kv map[string]string) (RegistryFaults, error) {
	var f RegistryFaults
	for k, v := range kv {
		rate, err := strconv.ParseFloat(v, 64)
		if err != nil || rate < 0 || rate > 1 {
			return f, fmt.Errorf("registry-faults: %s=%s is not a rate from 0 to 1", k, v)
		}
		switch k {
		case "lose-reply":
			f.LoseReply = rate
		case "slow-call":
			f.SlowCall = rate
		case "drop-wakeup":
			f.DropWakeup = rate
		default:
			return f, fmt.Errorf("registry-faults: unknown rate %q, want lose-reply, slow-call or drop-wakeup", k)
		}
	}
	return f, nil
}

// userError renders an error as the output line a user would see.
func userError(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error() + "\n"
}

// loadSpread prints each live machine's number of placed units and the spread.
func (s *Script) loadSpread() (string, error) {
	load, err := s.c.Load()
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, len(load))
	for id := range load {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	lo, hi := -1, 0
	for _, id := range ids {
		fmt.Fprintf(&b, "%s=%d ", id, load[id])
		if lo < 0 || load[id] < lo {
			lo = load[id]
		}
		hi = max(hi, load[id])
	}
	fmt.Fprintf(&b, "spread=%d\n", hi-max(lo, 0))
	return b.String(), nil
}

// check prints the invariant results.
func (s *Script) check() string {
	vs := s.c.Violations()
	if len(vs) == 0 {
		return "invariants hold\n"
	}
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.Error() + "\n")
	}
	return b.String()
}
