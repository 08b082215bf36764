package memory

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// TestListsMatchStores drives a registry with random writes and checks, at random
// moments, that every merged listing equals a fresh sort of the stores.
func TestListsMatchStores(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { checkListsAgainstStores(t, seed) })
	}
}

func checkListsAgainstStores(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	clock := &fixedClock{now: time.Unix(0, 0)}
	r := New(clock)
	ctx := t.Context()
	pick := func(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, rng.IntN(n)) }
	fence, err := r.AcquireLeadership(ctx, "e", "e/1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 1000 {
		burst := 1
		if rng.IntN(20) == 0 {
			burst = 100 // enough changes to drop a listing (64 + n/4)
		}
		for range burst {
			randomWrite(t, r, rng, fence, pick)
		}
		if rng.IntN(3) == 0 {
			clock.now = clock.now.Add(time.Duration(rng.IntN(5)) * time.Second)
		}
		if rng.IntN(4) == 0 {
			checkLists(t, r, fmt.Sprintf("seed %d step %d", seed, step))
		}
	}
}

func randomWrite(t *testing.T, r *Registry, rng *rand.Rand, fence core.Fence, pick func(string, int) string) {
	ctx := t.Context()
	var err error
	switch rng.IntN(7) {
	case 0:
		name := pick("u", 60) + ".service"
		err = r.CreateUnit(ctx, core.Unit{Name: name, Hash: core.Hash(pick("h", 5)), Global: rng.IntN(4) == 0}, []byte(name))
	case 1:
		err = r.DestroyUnit(ctx, pick("u", 60)+".service")
	case 2:
		err = r.SetTargetState(ctx, pick("u", 60)+".service", []core.JobState{core.Inactive, core.Loaded, core.Launched}[rng.IntN(3)])
	case 3:
		ops := make([]core.ScheduleOp, 1+rng.IntN(5))
		for i := range ops {
			ops[i] = core.ScheduleOp{Kind: core.OpKind(1 + rng.IntN(2)), Placement: core.Placement{
				Unit: pick("u", 60), Machine: pick("m", 8), Hash: core.Hash(pick("h", 5)),
			}}
		}
		_, err = r.ApplySchedule(ctx, fence, ops)
	case 4:
		id := pick("m", 8)
		err = r.Heartbeat(ctx, core.MachineState{ID: id, Version: pick("v", 2)}, id, time.Duration(1+rng.IntN(10))*time.Second)
	case 5:
		id := pick("m", 8)
		err = r.Leave(ctx, id, id)
	case 6:
		id := pick("m", 8)
		err = r.PublishUnitStates(ctx, id, id,
			[]core.UnitState{{Unit: pick("u", 60), SubState: pick("s", 3)}}, []string{pick("u", 60)})
	}
	switch {
	case err == nil, errors.Is(err, core.ErrUnitExists), errors.Is(err, core.ErrUnitNotFound), errors.Is(err, core.ErrNotPresent):
	default:
		t.Fatal(err)
	}
}

// checkLists compares each listing with a brute-force sort of its store.
func checkLists(t *testing.T, r *Registry, where string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
	byName := func(a, b core.Unit) int { return strings.Compare(a.Name, b.Name) }
	var units, globals []core.Unit
	for _, u := range r.units {
		units = append(units, u)
		if u.Global {
			globals = append(globals, u)
		}
	}
	var placements []core.Placement
	for _, on := range r.byMachine {
		for _, p := range on {
			placements = append(placements, p)
		}
	}
	var machines []core.MachineState
	for _, p := range r.machines {
		machines = append(machines, p.state)
	}
	var states []core.UnitState
	for _, on := range r.states {
		for _, s := range on {
			states = append(states, s)
		}
	}
	same(t, where+": units", r.lists.units.get(), sorted(units, byName))
	same(t, where+": globals", r.lists.globals.get(), sorted(globals, byName))
	same(t, where+": placements", r.lists.placements.get(), sorted(placements, func(a, b core.Placement) int {
		return cmp.Or(strings.Compare(a.Unit, b.Unit), strings.Compare(a.Machine, b.Machine))
	}))
	same(t, where+": machines", r.lists.machines.get(), sorted(machines, func(a, b core.MachineState) int {
		return strings.Compare(a.ID, b.ID)
	}))
	same(t, where+": states", r.lists.states.get(), sorted(states, func(a, b core.UnitState) int {
		return cmp.Or(strings.Compare(a.Unit, b.Unit), strings.Compare(a.Machine, b.Machine))
	}))
}

func sorted[V any](vs []V, compare func(a, b V) int) []V {
	slices.SortFunc(vs, compare)
	return append([]V{}, vs...)
}

func same[V any](t *testing.T, what string, got, want []V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// fixedClock is a core.Clock the test moves by hand (single goroutine).
type fixedClock struct{ now time.Time }

func (c *fixedClock) Now() time.Time { return c.now }
