package memory_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

const ttl = 10 * time.Second

// newRegistry returns a registry on a manual clock.
func newRegistry(opts ...memory.Option) (*memory.Registry, *memory.ManualClock) {
	clock := memory.NewManualClock(time.Unix(1_000_000, 0))
	return memory.New(clock, opts...), clock
}

func unit(name string, global bool) (core.Unit, []byte) {
	contents := []byte("[Service]\nExecStart=/bin/true " + name + "\n")
	return core.Unit{Name: name, Hash: core.HashBytes(contents), TargetState: core.Inactive, Global: global}, contents
}

func place(u, m string) core.ScheduleOp {
	return core.ScheduleOp{Kind: core.OpPlace, Placement: core.Placement{Unit: u, Machine: m, TargetState: core.Launched}}
}

// second returns the error of a call that also returns a value.
func second[T any](_ T, err error) error { return err }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRevisionCountsWrites(t *testing.T) {
	reg, clock := newRegistry()
	ctx := t.Context()
	a, aContents := unit("a.service", false)
	var fence core.Fence
	steps := []struct {
		name  string
		delta int64
		do    func() error
	}{
		{"create unit", 1, func() error { return reg.CreateUnit(ctx, a, aContents) }},
		{"create it again (rejected)", 0, func() error {
			if err := reg.CreateUnit(ctx, a, aContents); !errors.Is(err, core.ErrUnitExists) {
				return fmt.Errorf("got %v, want ErrUnitExists", err)
			}
			return nil
		}},
		{"read units", 0, func() error { _, err := reg.Units(ctx); return err }},
		{"set target state", 1, func() error { return reg.SetTargetState(ctx, "a.service", core.Launched) }},
		{"set the same target state", 0, func() error { return reg.SetTargetState(ctx, "a.service", core.Launched) }},
		{"acquire leadership", 1, func() (err error) { fence, err = reg.AcquireLeadership(ctx, "e1", "e1/1", ttl); return err }},
		{"renew leadership", 0, func() error { _, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl); return err }},
		{"apply a batch of two ops", 1, func() error {
			return second(reg.ApplySchedule(ctx, fence, []core.ScheduleOp{place("a.service", "m1"), place("b.service", "m1")}))
		}},
		{"apply a batch that changes nothing", 0, func() error {
			return second(reg.ApplySchedule(ctx, fence, []core.ScheduleOp{place("a.service", "m1")}))
		}},
		{"join", 1, func() error { return reg.Heartbeat(ctx, core.MachineState{ID: "m1"}, "s1", ttl) }},
		{"renew presence", 0, func() error { return reg.Heartbeat(ctx, core.MachineState{ID: "m1"}, "s1", ttl) }},
		{"change the machine record", 1, func() error {
			return reg.Heartbeat(ctx, core.MachineState{ID: "m1", Version: "2"}, "s1", ttl)
		}},
		{"publish a state", 1, func() error {
			return reg.PublishUnitStates(ctx, "m1", "s1", []core.UnitState{{Unit: "a.service", ActiveState: "active"}}, nil)
		}},
		{"publish the same state", 0, func() error {
			return reg.PublishUnitStates(ctx, "m1", "s1", []core.UnitState{{Unit: "a.service", ActiveState: "active"}}, nil)
		}},
		{"expire presence and lease", 2, func() error { clock.Advance(2 * ttl); reg.Expire(); return nil }},
		{"destroy unit", 1, func() error { return reg.DestroyUnit(ctx, "a.service") }},
	}
	for _, s := range steps {
		before := reg.Revision()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := reg.Revision() - before; got != s.delta {
			t.Errorf("%s: revision moved by %d, want %d", s.name, got, s.delta)
		}
	}
}

func TestEpochIsRevisionOfAcquisition(t *testing.T) {
	reg, _ := newRegistry()
	a, contents := unit("a.service", false)
	must(t, reg.CreateUnit(t.Context(), a, contents))
	fence, err := reg.AcquireLeadership(t.Context(), "e1", "e1/1", ttl)
	must(t, err)
	if fence.Epoch != reg.Revision() {
		t.Fatalf("epoch %d, want the revision of the acquisition %d", fence.Epoch, reg.Revision())
	}
}

func TestResultsAreCopies(t *testing.T) {
	reg, _ := newRegistry()
	ctx := t.Context()
	a, contents := unit("a.service", false)
	original := string(contents)
	must(t, reg.CreateUnit(ctx, a, contents))
	contents[0] = 'X' // the caller's buffer is not the stored one
	meta := map[string]string{"region": "eu"}
	must(t, reg.Heartbeat(ctx, core.MachineState{ID: "m1", Metadata: meta}, "s1", ttl))
	meta["region"] = "changed by caller"

	got, err := reg.UnitContents(ctx, a.Hash)
	must(t, err)
	got[0] = 'Y'
	units, err := reg.Units(ctx)
	must(t, err)
	units[0].Name = "mutated"
	machines, err := reg.Machines(ctx)
	must(t, err)
	machines[0].Metadata["region"] = "mutated"

	got, err = reg.UnitContents(ctx, a.Hash)
	must(t, err)
	if string(got) != original {
		t.Errorf("stored contents changed to %q", got)
	}
	units, err = reg.Units(ctx)
	must(t, err)
	if units[0].Name != "a.service" {
		t.Errorf("stored unit renamed to %q", units[0].Name)
	}
	machines, err = reg.Machines(ctx)
	must(t, err)
	if r := machines[0].Metadata["region"]; r != "eu" {
		t.Errorf("stored metadata region changed to %q", r)
	}
}

func TestContentsKeptWhilePlaced(t *testing.T) {
	reg, _ := newRegistry()
	ctx := t.Context()
	a, contents := unit("a.service", false)
	must(t, reg.CreateUnit(ctx, a, contents))
	fence, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl)
	must(t, err)
	op := place("a.service", "m1")
	op.Hash = a.Hash
	must(t, second(reg.ApplySchedule(ctx, fence, []core.ScheduleOp{op})))
	must(t, reg.DestroyUnit(ctx, "a.service"))
	if _, err := reg.UnitContents(ctx, a.Hash); err != nil {
		t.Fatalf("contents of a destroyed but still placed unit: %v", err)
	}
	op.Kind = core.OpUnplace
	must(t, second(reg.ApplySchedule(ctx, fence, []core.ScheduleOp{op})))
	if _, err := reg.UnitContents(ctx, a.Hash); !errors.Is(err, core.ErrUnitNotFound) {
		t.Fatalf("contents after the last user went: got %v, want ErrUnitNotFound", err)
	}
}

func TestInvalidOpWritesNothing(t *testing.T) {
	reg, _ := newRegistry()
	ctx := t.Context()
	fence, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl)
	must(t, err)
	for _, bad := range []core.ScheduleOp{
		{Kind: 99, Placement: core.Placement{Unit: "b.service", Machine: "m1"}},
		{Kind: core.OpPlace, Placement: core.Placement{Machine: "m1"}},
		{Kind: core.OpPlace, Placement: core.Placement{Unit: "b.service"}},
	} {
		if _, err := reg.ApplySchedule(ctx, fence, []core.ScheduleOp{place("a.service", "m1"), bad}); err == nil {
			t.Errorf("ApplySchedule with invalid op %+v succeeded", bad)
		}
	}
	ps, err := reg.Placements(ctx)
	must(t, err)
	if len(ps) != 0 {
		t.Fatalf("placements after rejected batches: %+v", ps)
	}
}

func TestConcurrentUse(t *testing.T) {
	reg, clock := newRegistry()
	ctx := t.Context()
	const workers, each = 4, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			id := fmt.Sprintf("m%d", w)
			for i := range each {
				u, contents := unit(fmt.Sprintf("u%d-%d.service", w, i), i%2 == 0)
				if err := reg.CreateUnit(ctx, u, contents); err != nil {
					t.Error(err)
					return
				}
				if err := reg.Heartbeat(ctx, core.MachineState{ID: id}, id, ttl); err != nil {
					t.Error(err)
					return
				}
				clock.Advance(time.Millisecond)
				if _, err := reg.GlobalUnits(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	units, err := reg.Units(ctx)
	must(t, err)
	if len(units) != workers*each {
		t.Fatalf("got %d units, want %d", len(units), workers*each)
	}
}

func TestNotifyAfterCancelledContext(t *testing.T) {
	reg, _ := newRegistry()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, ok := <-reg.Notify(ctx, core.Scope{}); ok {
		t.Fatal("Notify with a cancelled context: got a value, want a closed channel")
	}
}

func TestManualClock(t *testing.T) {
	start := time.Unix(100, 0)
	c := memory.NewManualClock(start)
	c.Advance(1500 * time.Millisecond)
	if got, want := c.Now(), start.Add(1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now after Advance: got %v, want %v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(-1s) did not panic")
		}
	}()
	c.Advance(-time.Second)
}
