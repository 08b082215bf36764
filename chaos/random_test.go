package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/internal/procfs"
)

// The knobs of TestRandomChaos: how long it runs (a Go duration; unset, the
// test skips) and the seed of its schedule (unset, one is made from the
// time and logged).
const (
	randomEnv = "CHAOS_RANDOM"
	seedEnv   = "CHAOS_SEED"
)

// Bounds of the random schedule. A short fault ends before the victim's
// presence can lapse (agent_ttl less one renewal period, less a second for a
// loaded host); a long one outlasts agent_ttl.
const (
	shortMin, shortMax = 300 * time.Millisecond, 2 * time.Second
	longMin, longMax   = 6 * time.Second, 16 * time.Second
	pauseMax           = 4 * time.Second
	minUnits, maxUnits = 3, 10
	// lapseFloor is the shortest outage after which a machine's presence may
	// have lapsed unseen: agent_ttl less the renewal period (agent_ttl/3)
	// less a second of slack.
	lapseFloor = agentTTL - agentTTL/3 - time.Second
)

// randomGlobal is the global unit of the random run's workload, started
// once at its beginning (besides the cluster's beacon).
const randomGlobal = "rg.service"

// faultKind is one kind of fault of the random run. Adding a kind (an etcd
// restart, packet drops, a clock jump) is one entry in faultKinds.
type faultKind struct {
	name string
	// leader: the victim may be the engine leader.
	leader bool
	// restarts: the fault restarts the victim's units whatever its length
	// (their systemd manager dies with them).
	restarts bool
	// inject starts the fault on machine m; heal ends it.
	inject, heal func(c *cluster, m machine) error
}

var faultKinds = []faultKind{
	{name: "kill-fleetd", leader: true, inject: killFleetd, heal: restartMachine},
	{name: "freeze-fleetd", leader: true, inject: freezeFleetd, heal: thawFleetd},
	{name: "kill-manager", restarts: true, inject: killManager, heal: restartMachine},
	{name: "partition", leader: true, inject: linkDown, heal: linkUp},
}

// killFleetd sends SIGKILL to m's fleetd and waits until it is gone.
func killFleetd(c *cluster, m machine) error {
	p, err := c.signalProc(m, syscall.SIGKILL)
	if err != nil {
		return err
	}
	return poll(waitLimit, m.Name+"'s fleetd gone", func() error {
		if p.Alive() {
			return errNotYet
		}
		return nil
	})
}

// restartMachine starts m's dead manager or fleetd again.
func restartMachine(c *cluster, m machine) error { return c.restart(m.Name) }

// freezeFleetd sends SIGSTOP to m's fleetd and waits until it is stopped.
func freezeFleetd(c *cluster, m machine) error {
	p, err := c.signalProc(m, syscall.SIGSTOP)
	if err != nil {
		return err
	}
	return poll(waitLimit, m.Name+"'s fleetd stopped", func() error {
		s, err := procfs.ReadStat(p.PID)
		if err != nil || s.State != 'T' {
			return errors.Join(err, fmt.Errorf("state %c: %w", s.State, errNotYet))
		}
		return nil
	})
}

// thawFleetd sends SIGCONT to m's fleetd.
func thawFleetd(c *cluster, m machine) error {
	_, err := c.signalProc(m, syscall.SIGCONT)
	return err
}

// killManager kills m's systemd manager and every unit under it.
func killManager(c *cluster, m machine) error {
	dir := filepath.Join(c.cgroup, m.Name, "manager")
	return poll(waitLimit, "every process under "+dir+" killed", func() error { return killAll(dir) })
}

func linkDown(c *cluster, m machine) error { return c.setLink(m, "down") }
func linkUp(c *cluster, m machine) error   { return c.setLink(m, "up") }

// signalProc sends sig to m's live fleetd and returns it.
func (c *cluster) signalProc(m machine, sig syscall.Signal) (proc, error) {
	p, ok := c.live("fleetd", m.Name)
	if !ok {
		return proc{}, fmt.Errorf("%s's fleetd does not run", m.Name)
	}
	if err := syscall.Kill(p.PID, sig); err != nil {
		return proc{}, fmt.Errorf("%v to %s's fleetd (pid %d): %w", sig, m.Name, p.PID, err)
	}
	return p, nil
}

// poll is eventually returning an error instead of failing a test.
func poll(limit time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v: %w", what, limit, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// op is one workload operation: start a new unit (free, or pinned to
// machine index pin-1) or destroy a running one.
type op struct {
	start bool
	unit  string
	pin   int
}

func (o op) String() string {
	switch {
	case !o.start:
		return "destroy " + o.unit
	case o.pin > 0:
		return fmt.Sprintf("start %s on m%d", o.unit, o.pin)
	}
	return "start " + o.unit
}

// step is one step of the schedule: workload operations, a pause, then a
// fault of faultKinds[kind] on machine index target (-1: the engine
// leader) lasting length.
type step struct {
	index  int
	ops    []op
	pause  time.Duration
	kind   int
	target int
	length time.Duration
	long   bool
}

func (s step) String() string {
	victim := "leader"
	if s.target >= 0 {
		victim = "m" + strconv.Itoa(s.target+1)
	}
	size := "short"
	if s.long {
		size = "long"
	}
	ops := make([]string, len(s.ops))
	for i, o := range s.ops {
		ops[i] = o.String()
	}
	return fmt.Sprintf("#%d [%s] pause %v, %s of %s for %v (%s)", s.index, strings.Join(ops, "; "),
		s.pause, faultKinds[s.kind].name, victim, s.length, size)
}

// plan draws the schedule from a seed: the same seed, the same steps.
type plan struct {
	r     *rand.Rand
	n     int      // units named so far
	live  []string // units started and not destroyed, in order of start
	steps int
}

func newPlan(seed uint64) *plan {
	return &plan{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// duration draws a duration in [lo, hi), in whole milliseconds.
func (p *plan) duration(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(p.r.Int64N(int64((hi-lo)/time.Millisecond)))*time.Millisecond
}

// next draws the next step. The first starts minUnits units.
func (p *plan) next() step {
	s := step{index: p.steps}
	p.steps++
	n := p.r.IntN(3)
	if s.index == 0 {
		n = minUnits
	}
	for range n {
		if len(p.live) <= minUnits || len(p.live) < maxUnits && p.r.IntN(2) == 0 {
			p.n++
			o := op{start: true, unit: fmt.Sprintf("rf%d.service", p.n)}
			if p.r.IntN(3) == 0 {
				o.pin = 1 + p.r.IntN(machines)
				o.unit = fmt.Sprintf("rp%d.service", p.n)
			}
			p.live = append(p.live, o.unit)
			s.ops = append(s.ops, o)
			continue
		}
		i := p.r.IntN(len(p.live))
		s.ops = append(s.ops, op{unit: p.live[i]})
		p.live = slices.Delete(p.live, i, i+1)
	}
	s.pause = p.duration(0, pauseMax)
	s.kind = p.r.IntN(len(faultKinds))
	s.target = p.r.IntN(machines)
	if faultKinds[s.kind].leader && p.r.IntN(3) == 0 {
		s.target = -1
	}
	s.long = p.r.IntN(2) == 0
	if s.long {
		s.length = p.duration(longMin, longMax)
	} else {
		s.length = p.duration(shortMin, shortMax)
	}
	return s
}

// TestRandomSchedule checks that the random run's schedule comes from its
// seed alone and stays within its bounds.
func TestRandomSchedule(t *testing.T) {
	a, b, other := newPlan(42), newPlan(42), newPlan(43)
	same := true
	kinds := map[string]int{}
	for range 500 {
		sa, sb, so := a.next(), b.next(), other.next()
		if sa.String() != sb.String() {
			t.Fatalf("seed 42 gave %q, then %q", sa, sb)
		}
		same = same && sa.String() == so.String()
		kinds[faultKinds[sa.kind].name]++
		lo, hi := shortMin, shortMax
		if sa.long {
			lo, hi = longMin, longMax
		}
		if sa.length < lo || sa.length >= hi || sa.pause < 0 || sa.pause >= pauseMax {
			t.Errorf("%v: length or pause out of bounds", sa)
		}
		if len(a.live) < minUnits || len(a.live) > maxUnits {
			t.Errorf("%v: %d units live, want %d..%d", sa, len(a.live), minUnits, maxUnits)
		}
	}
	if same {
		t.Error("seeds 42 and 43 gave the same schedule")
	}
	if len(kinds) != len(faultKinds) {
		t.Errorf("500 steps drew the kinds %v, want all %d", kinds, len(faultKinds))
	}
	if shortMax > lapseFloor || longMin <= agentTTL {
		t.Errorf("short faults (up to %v) must end before a lapse (%v), long ones (from %v) outlast agent_ttl (%v)", shortMax, lapseFloor, longMin, agentTTL)
	}
}

// randomRun is the state of TestRandomChaos.
type randomRun struct {
	t        *testing.T
	c        *cluster
	seed     uint64
	dir      string // the workload's unit files
	log      string // their start log
	plan     *plan
	done     []step
	live     []string // the workload's units running now
	globals  []string
	checks   int
	moved    int
	restarts int
	// ctlErrors counts the fleetctl commands of the workload that failed
	// and were tried again.
	ctlErrors int
	windows   []time.Duration // longest double-run window of each fault with one
	faults    map[string]int
}

// TestRandomChaos injects faults drawn at random from a seed, on a cluster
// in network namespaces, for the duration CHAOS_RANDOM, with a workload of
// units started and destroyed between faults. After each fault (before
// healing) and after healing it checks that no unit is lost, each runs on
// exactly one machine (global units on every machine), and none was
// restarted or moved unless the fault allowed it; the double-run window of
// each fault is measured. The schedule comes from the seed alone; what
// fleet does with it depends on timing, so one seed may not fail twice.
func TestRandomChaos(t *testing.T) {
	spec := os.Getenv(randomEnv)
	if spec == "" {
		t.Skipf("a long run, not in any set: set %s=<duration> (make chaos-random)", randomEnv)
	}
	length, err := time.ParseDuration(spec)
	if err != nil || length <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 30m (%v)", randomEnv, spec, err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: want an unsigned integer: %v", seedEnv, s, err)
		}
	}
	t.Logf("seed %d; the same schedule again: sudo %s=%d %s=%s go test -count=1 -run '^TestRandomChaos$' -timeout %v -v ./chaos",
		seed, seedEnv, seed, randomEnv, spec, length+length/2+10*time.Minute)
	if dl, ok := t.Deadline(); ok && time.Until(dl) < length+5*time.Minute {
		t.Fatalf("the test deadline is in %v: too short for %s=%s (give -timeout %v)", time.Until(dl).Round(time.Second), randomEnv, spec, length+length/2+10*time.Minute)
	}
	needCluster(t)
	c, err := startCluster(filepath.Dir(cl.fleetd), filepath.Join(t.TempDir(), "c"), "-netns")
	if c != nil {
		t.Cleanup(func() {
			if err := c.down(); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &randomRun{t: t, c: c, seed: seed, dir: t.TempDir(), plan: newPlan(seed), faults: map[string]int{},
		globals: []string{beaconUnit, randomGlobal}}
	r.log = filepath.Join(r.dir, "starts")
	t.Cleanup(func() {
		if t.Failed() {
			r.report("FAILED")
			r.keepLogs()
		}
	})
	r.startUnit(op{start: true, unit: randomGlobal})
	begin := time.Now()
	for time.Since(begin) < length {
		if dl, ok := t.Deadline(); ok && time.Until(dl) < 3*time.Minute {
			t.Logf("stopping early: the test deadline is in %v", time.Until(dl).Round(time.Second))
			break
		}
		s := r.plan.next()
		r.done = append(r.done, s)
		r.step(s)
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("ran %v", time.Since(begin).Round(time.Second))
	r.report("passed")
}

// startUnit writes o's unit file and starts it.
func (r *randomRun) startUnit(o op) {
	var fleet []string
	switch {
	case o.unit == randomGlobal:
		fleet = []string{"Global=true"}
	case o.pin > 0:
		fleet = []string{"MachineMetadata=name=" + r.c.machines[o.pin-1].Name}
	}
	if err := os.WriteFile(filepath.Join(r.dir, o.unit), []byte(loggedService(r.log, fleet...)), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.ctl(r.c.machines[0], "start", o.unit)
}

// ctl runs fleetctl against machine m, again while it fails (an API that
// cannot reach etcd for a moment, such as just after a partition heals,
// answers 503) until waitLimit; the failures are counted and logged. The
// commands are idempotent, and the checks judge their outcome.
func (r *randomRun) ctl(m machine, args ...string) {
	r.t.Helper()
	err := poll(waitLimit, "fleetctl "+strings.Join(args, " "), func() error {
		_, err := r.c.fleetctlOn(m, r.dir, args...)
		if err != nil {
			r.ctlErrors++
			r.t.Logf("%v (trying again)", err)
		}
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

// destroy destroys unit through machine m and waits until it runs nowhere.
func (r *randomRun) destroy(m machine, unit string) {
	r.ctl(m, "destroy", unit)
	eventually(r.t, waitLimit, unit+" gone after destroy", func() error {
		on, err := r.c.runsOn(unit)
		if err != nil {
			return err
		}
		if len(on) > 0 {
			return fmt.Errorf("%s runs on %v: %w", unit, slices.Sorted(maps.Keys(on)), errNotYet)
		}
		return nil
	})
}

// step runs one step of the schedule and checks its outcome.
func (r *randomRun) step(s step) {
	t, c := r.t, r.c
	for _, o := range s.ops {
		if o.start {
			r.startUnit(o)
			r.live = append(r.live, o.unit)
		} else {
			r.destroy(c.machines[0], o.unit)
			r.live = slices.DeleteFunc(r.live, func(u string) bool { return u == o.unit })
		}
	}
	before := c.settled(t, "", r.live, r.globals, c.machines)
	r.checks++
	time.Sleep(s.pause) // the schedule's pause, not a wait for an outcome
	victim := r.victim(s)
	kind := faultKinds[s.kind]
	r.faults[kind.name]++
	t.Logf("%v: victim %s", s, victim.Name)

	w := c.watch(r.live)
	pres := c.watchPresence(victim, c.except(victim.Name)[0])
	start := time.Now()
	if err := kind.inject(c, victim); err != nil {
		t.Fatalf("%v: %s of %s: %v", s, kind.name, victim.Name, err)
	}
	time.Sleep(s.length) // the fault's length, drawn by the schedule
	during, err := c.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r.checkKept(s, before, during, victim.Name, true, "during the fault")
	r.checkRegistry(s, c.except(victim.Name)[0])
	if err := kind.heal(c, victim); err != nil {
		t.Fatalf("%v: healing %s of %s: %v", s, kind.name, victim.Name, err)
	}
	down := time.Since(start)
	r.barrier(s, victim)
	after := c.settled(t, "", r.live, r.globals, c.machines)
	r.checks++
	lapsed := pres.end()
	allowed := kind.restarts || lapsed || down >= lapseFloor
	r.checkKept(s, before, after, victim.Name, allowed, "after healing")
	w.sync(t)
	seen := w.end(t)
	var worst time.Duration
	for _, u := range r.live {
		o := seen[u]
		if o.times > 0 && !(allowed && before[u][victim.Name] != nil) {
			t.Errorf("%v: %s ran on two machines %d times (%v) without having to move", s, u, o.times, o.total)
		}
		worst = max(worst, o.longest)
		if on, _ := after.only(u, ""); before[u][on] == nil {
			r.moved++
		} else if !slices.Equal(before[u][on], after[u][on]) {
			r.restarts++
		}
	}
	r.checks++
	if worst > 0 {
		r.windows = append(r.windows, worst)
	}
	t.Logf("#%d healed: outage %v, presence lapse seen %v, double-run window %v", s.index, down.Round(time.Millisecond), lapsed, worst.Round(time.Millisecond))
}

// barrier starts a unit pinned to the healed victim, through another
// machine, waits until it runs there (the victim's fleetd has then caught up
// with the cluster) and destroys it.
func (r *randomRun) barrier(s step, victim machine) {
	unit := fmt.Sprintf("rb%d.service", s.index)
	if err := os.WriteFile(filepath.Join(r.dir, unit), []byte(service("/bin/sleep infinity", "MachineMetadata=name="+victim.Name)), 0o644); err != nil {
		r.t.Fatal(err)
	}
	other := r.c.except(victim.Name)[0]
	r.ctl(other, "start", unit)
	eventually(r.t, waitLimit, unit+" running on "+victim.Name, func() error {
		on, err := r.c.runsOn(unit)
		if err != nil {
			return err
		}
		if len(on) != 1 || on[victim.Name] == nil {
			return fmt.Errorf("%s runs on %v: %w", unit, slices.Sorted(maps.Keys(on)), errNotYet)
		}
		return nil
	})
	r.destroy(other, unit)
}

// victim resolves the step's target to a machine.
func (r *randomRun) victim(s step) machine {
	if s.target >= 0 {
		return r.c.machines[s.target]
	}
	var lead machine
	eventually(r.t, waitLimit, "one engine leader", func() (err error) { lead, err = r.c.leader(r.c.machines); return err })
	return lead
}

// checkKept fails the test for every unit that ran somewhere in before and
// does not run there with the same processes in after, except on machine
// victim when the fault allowed its units to move or restart.
func (r *randomRun) checkKept(s step, before, after layout, victim string, allowed bool, when string) {
	r.t.Helper()
	for _, u := range append(slices.Clone(r.live), r.globals...) {
		for m, pids := range before[u] {
			if m == victim && allowed {
				continue
			}
			if !slices.Equal(after[u][m], pids) {
				r.t.Errorf("%v, %s: %s on %s has processes %v, had %v (restarted or moved without need)", s, when, u, m, after[u][m], pids)
			}
		}
	}
	r.checks++
}

// checkRegistry fails the test for every unit missing from fleet's
// registry, as machine ask reads it.
func (r *randomRun) checkRegistry(s step, ask machine) {
	r.t.Helper()
	files, err := r.c.unitFiles(ask)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, u := range append(slices.Clone(r.live), r.globals...) {
		if _, ok := files[u]; !ok {
			r.t.Errorf("%v: %s is not in fleet's registry (lost) during the fault", s, u)
		}
	}
	r.checks++
}

// report logs the outcome so far: the seed, the faults by kind, the checks
// and the double-run windows, and on failure the schedule so far.
func (r *randomRun) report(outcome string) {
	t := r.t
	t.Logf("random chaos %s: seed %d, %d faults %v, %d checks passed, %d units moved, %d restarted in place, %d fleetctl commands tried again",
		outcome, r.seed, len(r.done), r.faults, r.checks, r.moved, r.restarts, r.ctlErrors)
	w := slices.Clone(r.windows)
	slices.Sort(w)
	if len(w) > 0 {
		t.Logf("double-run windows: %d faults with one, longest %v, median %v", len(w), w[len(w)-1].Round(time.Millisecond), w[len(w)/2].Round(time.Millisecond))
	} else {
		t.Log("double-run windows: none")
	}
	if outcome != "passed" {
		t.Logf("failed at fault #%d; the schedule so far (seed %d):", len(r.done)-1, r.seed)
		for _, s := range r.done {
			t.Logf("  %v", s)
		}
	}
}

// keepLogs copies the cluster's fleetd, manager and etcd logs into a
// directory that outlives the test, and logs where.
func (r *randomRun) keepLogs() {
	keep, err := os.MkdirTemp("", fmt.Sprintf("fleet-random-%d-", r.seed))
	if err != nil {
		r.t.Log(err)
		return
	}
	logs, _ := filepath.Glob(filepath.Join(r.c.dir, "*", "*.log"))
	more, _ := filepath.Glob(filepath.Join(r.c.dir, "etcd", "*", "*.log"))
	for _, f := range append(logs, more...) {
		data, err := os.ReadFile(f)
		if err == nil {
			rel, _ := filepath.Rel(r.c.dir, f)
			err = os.WriteFile(filepath.Join(keep, strings.ReplaceAll(rel, "/", "-")), data, 0o644)
		}
		if err != nil {
			r.t.Log(err)
		}
	}
	r.t.Logf("the cluster's logs are kept in %s", keep)
}

// presence watches whether a machine's presence lapsed (it left the live
// machines) while a fault lasted, as another machine's API reports them.
type presence struct {
	lapsed     atomic.Bool
	stop, done chan struct{}
}

// watchPresence polls ask's list of machines for victim until ended.
func (c *cluster) watchPresence(victim, ask machine) *presence {
	p := &presence{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		client, err := api.NewClient(api.ClientConfig{Endpoint: "unix://" + ask.Socket, Timeout: 5 * time.Second})
		if err != nil {
			p.lapsed.Store(true) // unobserved: allow what a lapse allows
			return
		}
		defer client.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ms, err := client.Machines(ctx)
			cancel()
			if err == nil && !slices.ContainsFunc(ms, func(m api.Machine) bool { return m.ID == victim.ID }) {
				p.lapsed.Store(true)
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// end stops the watch and says whether the presence lapsed.
func (p *presence) end() bool {
	close(p.stop)
	<-p.done
	return p.lapsed.Load()
}

// sync waits until the watcher has sampled the cgroups twice more, so that
// its last sample is from after the caller's.
func (w *watcher) sync(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	n := w.polls
	w.mu.Unlock()
	eventually(t, waitLimit, "two more samples of the watcher", func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.polls < n+2 {
			return errNotYet
		}
		return nil
	})
}
