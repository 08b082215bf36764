package sim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/rapidopts"
	"pgregory.net/rapid"
)

// The property tests below drive whole simulated clusters through random
// histories of user commands and faults. Every step must leave the invariants of
// DESIGN.md true (the simulator checks them after each event); after healing,
// the cluster must converge.
//
// By default they run 6,000 histories on the memory registry (2,000 per test)
// and 60 on embedded etcd, of about 60 actions each, from a fixed seed, in
// about 40 s on two cores. RAPID_CHECKS or
// -rapid.checks sets the histories per test, RAPID_STEPS or -rapid.steps the
// average actions per history, and RAPID_SEED or -rapid.seed the seed (0: a
// random one). A failure shrinks to a short action list, saved under
// testdata/rapid/ with the command that replays it.

// Defaults: histories per property and average actions per history.
const (
	propChecks = 2000
	propSteps  = 60
)

// convergeBound is how long a healed cluster may take to converge: the longest
// start back-off of a unit that kept failing (5 min), then a lease TTL and a
// few passes.
const convergeBound = 6 * time.Minute

// TestPropSpread: plain units on a fixed set of machines, with faults that never
// move a placement (engine stalls, fleetd restarts, systemd faults). After
// convergence every wanted unit is placed and the load spread is at most one.
func TestPropSpread(t *testing.T) {
	setRapidDefaults(t, propChecks)
	rapid.Check(t, func(t *rapid.T) {
		h := newHistory(t, 2, 6, false, nil)
		h.run(t, h.spreadActions())
		h.converge(t)
		h.checkSpread(t)
	})
}

// TestPropConstraints: units with every kind of [X-Fleet] constraint, target
// changes, destroys and machine joins, without infrastructure faults.
func TestPropConstraints(t *testing.T) {
	setRapidDefaults(t, propChecks)
	rapid.Check(t, func(t *rapid.T) {
		h := newHistory(t, 2, 5, true, nil)
		h.run(t, h.constraintActions())
		h.converge(t)
	})
}

// TestPropFaults: everything at once: constrained units and every fault the
// simulator can inject, including crashes, partitions and registry outages.
func TestPropFaults(t *testing.T) {
	setRapidDefaults(t, propChecks)
	rapid.Check(t, func(t *rapid.T) {
		h := newHistory(t, 2, 5, true, nil)
		actions := h.constraintActions()
		actions["fault"] = func(t *rapid.T) { h.fault(t, h.allFaults()) }
		h.run(t, actions)
		h.converge(t)
	})
}

// propEtcdChecks is the default number of histories run on embedded etcd: a
// share of the property runs, since each etcd history costs more.
const propEtcdChecks = 60

// TestPropFaultsEtcd runs histories of TestPropFaults on the etcd registry (one
// embedded server, a fresh key prefix per history).
func TestPropFaultsEtcd(t *testing.T) {
	setRapidDefaults(t, propEtcdChecks)
	backend := sharedEtcd(t).Backend()
	rapid.Check(t, func(t *rapid.T) {
		h := newHistory(t, 2, 5, true, backend)
		actions := h.constraintActions()
		actions["fault"] = func(t *rapid.T) { h.fault(t, h.allFaults()) }
		h.run(t, actions)
		h.converge(t)
	})
}

// setRapidDefaults makes rapid run checks histories of propSteps actions on
// average in this test, drawn from a fixed seed so that a default run is
// deterministic, unless the user chose the count, the steps or the seed.
func setRapidDefaults(t *testing.T, checks int) {
	rapidopts.Defaults(t, map[string]string{"rapid.checks": strconv.Itoa(checks), "rapid.steps": strconv.Itoa(propSteps), "rapid.seed": rapidopts.Seed})
}

// history is one random run: the cluster and what the test did to it.
type history struct {
	c       *Cluster
	seed    uint64
	tail    *traceTail
	maxMach int
	joined  int
	units   map[string]core.JobState // submitted and not destroyed
	cut     map[string]bool          // partitioned machines
	failing map[string]bool          // machines whose starts fail
	regDown bool
}

// newHistory starts a cluster of minMach..maxMach-1 machines, one to three of
// them running an engine, and lets it settle for a second so that every machine
// is present before the first unit is placed.
func newHistory(t *rapid.T, minMach, maxMach int, skew bool, backend BackendFactory) *history {
	seed := rapid.Uint64().Draw(t, "seed")
	cfg := Config{Seed: seed, Backend: backend}
	if skew {
		cfg.MaxSkew = rapid.SampledFrom([]time.Duration{0, 0, 200 * time.Millisecond, 2 * time.Second}).Draw(t, "skew")
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &history{c: c, seed: seed, tail: &traceTail{}, maxMach: maxMach, units: map[string]core.JobState{},
		cut: map[string]bool{}, failing: map[string]bool{}}
	c.TraceTo(h.tail)
	n := rapid.IntRange(minMach, maxMach-1).Draw(t, "machines")
	engines := rapid.IntRange(1, min(3, n)).Draw(t, "engines")
	for i := 0; i < n; i++ {
		h.join(t, i < engines)
	}
	h.advance(t, time.Second)
	return h
}

// Machine IDs are long, as real ones are, and share a few 8-character prefixes,
// so that short IDs in MachineID= are sometimes ambiguous.
var idPrefixes = []string{"3fa85f64", "3fa85f64", "9c0e1d2b", "e7a1c4d0"}

// join adds a machine with random metadata.
func (h *history) join(t *rapid.T, engine bool) {
	prefix := rapid.SampledFrom(idPrefixes).Draw(t, "id-prefix")
	id := fmt.Sprintf("%s%024x", prefix, uint64(h.joined+1)*0x9e3779b97f4a7c15)
	h.joined++
	md := map[string]string{}
	if role := rapid.SampledFrom([]string{"", "front", "back", "back,front"}).Draw(t, "role"); role != "" {
		md["role"] = role
	}
	if disk := rapid.SampledFrom([]string{"", "ssd", "hdd"}).Draw(t, "disk"); disk != "" {
		md["disk"] = disk
	}
	if _, err := h.c.AddMachine(id, md, engine); err != nil {
		t.Fatal(err)
	}
}

// run repeats random actions, checking the invariants after each.
func (h *history) run(t *rapid.T, actions map[string]func(*rapid.T)) {
	actions[""] = h.checkSafety
	t.Repeat(actions)
}

// checkSafety fails the history if an invariant broke during the last action.
func (h *history) checkSafety(t *rapid.T) {
	if vs := h.c.Violations(); len(vs) > 0 {
		t.Fatalf("cluster seed %d: %v\nlast trace lines:\n%s", h.seed, vs[0], h.tail)
	}
}

// converge heals every fault and requires the cluster to converge. Then it
// must stay put: after a minute for late reactions (Converged can hold just
// before the engine reacts to the last change), another minute brings no
// engine decision, so nothing oscillates.
func (h *history) converge(t *rapid.T) {
	h.c.Heal()
	if _, err := h.c.RunUntilConverged(convergeBound, time.Second); err != nil {
		t.Fatalf("cluster seed %d: after healing: %v\nlast trace lines:\n%s", h.seed, err, h.tail)
	}
	h.advance(t, time.Minute)
	decided := h.c.stats.decisions
	h.advance(t, time.Minute)
	if ok, why := h.c.Converged(); !ok || h.c.stats.decisions != decided {
		t.Fatalf("cluster seed %d: %d decisions in a quiet minute after convergence (converged: %t %s)\nlast trace lines:\n%s",
			h.seed, h.c.stats.decisions-decided, ok, why, h.tail)
	}
}

// checkSpread requires every wanted unit placed and the load spread among the
// machines to be at most one. It holds because no placement is ever removed in
// that property and every machine was present before the first placement.
func (h *history) checkSpread(t *rapid.T) {
	if len(h.c.unplaceable) > 0 {
		t.Fatalf("cluster seed %d: plain units reported unplaceable: %v", h.seed, h.c.unplaceable)
	}
	load, err := h.c.Load()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := -1, 0
	for _, l := range load {
		if lo < 0 || l < lo {
			lo = l
		}
		hi = max(hi, l)
	}
	if hi-lo > 1 {
		t.Fatalf("cluster seed %d: load spread %d > 1: %v\nlast trace lines:\n%s", h.seed, hi-lo, load, h.tail)
	}
}

// advance runs the cluster for d of virtual time.
func (h *history) advance(t *rapid.T, d time.Duration) {
	if err := h.c.RunFor(d); err != nil {
		h.checkSafety(t)
		t.Fatal(err)
	}
}

// userError accepts the errors a user can get from a correct command: the
// registry being unreachable.
func (h *history) userError(t *rapid.T, what string, err error) bool {
	if err == nil {
		return true
	}
	if errors.Is(err, core.ErrUnavailable) {
		return false
	}
	t.Fatalf("%s: %v", what, err)
	return false
}

// traceTail keeps the last lines of a cluster's trace.
type traceTail struct {
	lines [40]string
	n     int
}

func (r *traceTail) Write(p []byte) (int, error) {
	r.lines[r.n%len(r.lines)] = strings.TrimRight(string(p), "\n")
	r.n++
	return len(p), nil
}

func (r *traceTail) String() string {
	var b strings.Builder
	for i := max(0, r.n-len(r.lines)); i < r.n; i++ {
		b.WriteString(r.lines[i%len(r.lines)] + "\n")
	}
	return b.String()
}
