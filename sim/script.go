package sim

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// defaultUnit is the unit file of units a scenario names without giving one.
const defaultUnit = "[Service]\nExecStart=/bin/sleep infinity\n"

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
// Commands: cluster [seed=N] [ttl=D] [skew=D] [backend=memory]; add-machine ID
// [engine] [k=v ...]; submit NAME (unit file as input, or a sleep service);
// load|start|stop|unload|destroy NAME... (load and start submit a sleep service
// for a name not yet submitted); run D [verbose]; converge [max=D]
// [verbose]; list-units; list-machines; load-spread; crash ID; return ID;
// restart-fleetd ID; partition ID; reconnect ID; registry-down; registry-up;
// stall-engine ID D; systemctl-stop ID UNIT; crash-unit ID UNIT; fail-starts ID;
// restart-systemd ID; heal; check.
type Script struct {
	c        *Cluster
	backends map[string]BackendFactory
}

// NewScript returns an interpreter. backends maps the names accepted by
// `cluster backend=NAME` to factories; "memory" is always available.
func NewScript(backends map[string]BackendFactory) *Script {
	b := map[string]BackendFactory{"memory": MemoryBackend}
	for k, v := range backends {
		b[k] = v
	}
	return &Script{backends: b}
}

// Cluster is the cluster the script built, or nil before `cluster`.
func (s *Script) Cluster() *Cluster { return s.c }

// Close releases the cluster.
func (s *Script) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}

// Exec runs one command (its words) with its input and returns its output.
// Errors of the scenario (a bad unit file, an invalid transition) are part of
// the output, as a user would see them; only a malformed command is an error.
func (s *Script) Exec(words []string, input string) (string, error) {
	if len(words) == 0 {
		return "", errors.New("empty command")
	}
	cmd, args := words[0], words[1:]
	if cmd == "cluster" {
		return s.newCluster(args)
	}
	if s.c == nil {
		return "", fmt.Errorf("%s: the first command must be cluster", cmd)
	}
	mark := s.c.TraceLen()
	out, err := s.exec(cmd, args, input)
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	if cmd == "run" || cmd == "converge" {
		out = s.traceSince(mark, hasWord(args, "verbose")) + out
	}
	return out, nil
}

func (s *Script) newCluster(args []string) (string, error) {
	kv, _ := splitArgs(args)
	cfg := Config{KeepTrace: true}
	var err error
	if v, ok := kv["seed"]; ok {
		if cfg.Seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			return "", fmt.Errorf("cluster: seed: %w", err)
		}
	}
	for key, dst := range map[string]*time.Duration{"ttl": &cfg.AgentTTL, "skew": &cfg.MaxSkew, "job": &cfg.JobDuration} {
		if v, ok := kv[key]; ok {
			if *dst, err = time.ParseDuration(v); err != nil {
				return "", fmt.Errorf("cluster: %s: %w", key, err)
			}
		}
	}
	name := kv["backend"]
	if name == "" {
		name = "memory"
	}
	if cfg.Backend = s.backends[name]; cfg.Backend == nil {
		return "", fmt.Errorf("cluster: unknown backend %q", name)
	}
	if s.c != nil {
		s.c.Close()
	}
	if s.c, err = New(cfg); err != nil {
		return "", err
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

func need(args []string, n int, usage string) error {
	if len(args) < n {
		return fmt.Errorf("usage: %s", usage)
	}
	return nil
}

func (s *Script) exec(cmd string, args []string, input string) (string, error) {
	c := s.c
	kv, pos := splitArgs(args)
	switch cmd {
	case "at":
		return s.at(args)
	case "add-machine":
		if err := need(pos, 1, "add-machine ID [engine] [key=value ...]"); err != nil {
			return "", err
		}
		md := map[string]string{}
		for k, v := range kv {
			md[k] = v
		}
		_, err := c.AddMachine(pos[0], md, hasWord(pos, "engine"))
		return "", err
	case "submit":
		if err := need(pos, 1, "submit NAME"); err != nil {
			return "", err
		}
		body := input + "\n"
		if strings.TrimSpace(body) == "" {
			body = defaultUnit
		}
		return userError(c.Submit(pos[0], []byte(body))), nil
	case "load", "start", "stop", "unload", "destroy":
		if err := need(pos, 1, cmd+" NAME..."); err != nil {
			return "", err
		}
		var b strings.Builder
		for _, n := range pos {
			if _, known := c.units[n]; !known && (cmd == "load" || cmd == "start") {
				if err := c.Submit(n, []byte(defaultUnit)); err != nil {
					b.WriteString(userError(err))
					continue
				}
			}
			b.WriteString(userError(c.Command(core.Command(cmd), n)))
		}
		return b.String(), nil
	case "run":
		if err := need(pos, 1, "run DURATION [verbose]"); err != nil {
			return "", err
		}
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			return "", err
		}
		return userError(c.RunFor(d)), nil
	case "converge":
		max := 5 * time.Minute
		if v, ok := kv["max"]; ok {
			var err error
			if max, err = time.ParseDuration(v); err != nil {
				return "", err
			}
		}
		_, err := c.RunUntilConverged(max, time.Second)
		return userError(err), nil
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

// execFault runs the commands that act on one machine.
func (s *Script) execFault(cmd string, pos []string) (string, error) {
	c := s.c
	one := func(f func(string) error) (string, error) {
		if err := need(pos, 1, cmd+" MACHINE"); err != nil {
			return "", err
		}
		return userError(f(pos[0])), nil
	}
	two := func(f func(string, string) error) (string, error) {
		if err := need(pos, 2, cmd+" MACHINE UNIT"); err != nil {
			return "", err
		}
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
		return two(func(id, d string) error {
			dur, err := time.ParseDuration(d)
			if err != nil {
				return err
			}
			return pause(id, dur)
		})
	}
	return "", fmt.Errorf("unknown command %q", cmd)
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
