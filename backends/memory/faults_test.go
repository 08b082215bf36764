package memory_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

func TestFailChangesNothing(t *testing.T) {
	reg, _ := newRegistry()
	ctx := t.Context()
	reg.SetFaults(memory.Faults{Fail: func(op, machine string) error {
		if op == "CreateUnit" {
			return core.ErrUnavailable
		}
		return nil
	}})
	a, contents := unit("a.service", false)
	before := reg.Revision()
	if err := reg.CreateUnit(ctx, a, contents); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("CreateUnit with Fail: got %v, want ErrUnavailable", err)
	}
	if reg.Revision() != before {
		t.Fatal("a failed call moved the revision")
	}
	reg.SetFaults(memory.Faults{})
	must(t, reg.CreateUnit(ctx, a, contents))
}

func TestLoseReplyKeepsEffect(t *testing.T) {
	reg, _ := newRegistry(memory.WithFaults(memory.Faults{LoseReply: func(op, machine string) error {
		return core.ErrUnavailable
	}}))
	ctx := t.Context()
	a, contents := unit("a.service", false)
	if err := reg.CreateUnit(ctx, a, contents); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("CreateUnit with LoseReply: got %v, want ErrUnavailable", err)
	}
	if units, err := reg.Units(ctx); !errors.Is(err, core.ErrUnavailable) || units != nil {
		t.Fatalf("Units with LoseReply: got %v, %v; want nil, ErrUnavailable", units, err)
	}
	reg.SetFaults(memory.Faults{})
	if err := reg.CreateUnit(ctx, a, contents); !errors.Is(err, core.ErrUnitExists) {
		t.Fatalf("CreateUnit after a lost reply: got %v, want ErrUnitExists (the first create took effect)", err)
	}
}

// TestFaultHookArguments checks the op and machine each hook sees.
func TestFaultHookArguments(t *testing.T) {
	reg, _ := newRegistry()
	ctx := t.Context()
	var before, after []string
	reg.SetFaults(memory.Faults{
		Fail:      func(op, machine string) error { before = append(before, op+"/"+machine); return nil },
		LoseReply: func(op, machine string) error { after = append(after, op+"/"+machine); return nil },
	})
	a, contents := unit("a.service", false)
	must(t, reg.CreateUnit(ctx, a, contents))
	must(t, reg.Heartbeat(ctx, core.MachineState{ID: "m1"}, "s1", ttl))
	fence, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl)
	must(t, err)
	must(t, second(reg.ApplySchedule(ctx, fence, []core.ScheduleOp{place("a.service", "m1")})))
	_, err = reg.MachinePlacements(ctx, "m1")
	must(t, err)
	must(t, reg.PublishUnitStates(ctx, "m1", "s1", nil, nil))
	must(t, reg.Leave(ctx, "m1", "s1"))
	must(t, reg.ResignLeadership(ctx, fence))
	_, err = reg.GlobalUnits(ctx)
	must(t, err)
	want := []string{
		"CreateUnit/", "Heartbeat/m1", "AcquireLeadership/e1", "ApplySchedule/e1", "MachinePlacements/m1",
		"PublishUnitStates/m1", "Leave/m1", "ResignLeadership/e1", "GlobalUnits/",
	}
	if !slices.Equal(before, want) {
		t.Errorf("Fail saw %q, want %q", before, want)
	}
	if !slices.Equal(after, want) {
		t.Errorf("LoseReply saw %q, want %q", after, want)
	}
}

func TestDropNotify(t *testing.T) {
	reg, _ := newRegistry()
	ctx := t.Context()
	var asked []string
	reg.SetFaults(memory.Faults{DropNotify: func(s core.Scope) bool {
		asked = append(asked, "scope:"+s.Machine)
		return s.Machine == "m1"
	}})
	engine := reg.Notify(ctx, core.Scope{})
	m1 := reg.Notify(ctx, core.Scope{Machine: "m1"})
	m2 := reg.Notify(ctx, core.Scope{Machine: "m2"})
	g, contents := unit("g.service", true)
	must(t, reg.CreateUnit(ctx, g, contents))

	// Wake-ups are sent before the call returns, so no wait is needed.
	for _, c := range []struct {
		name string
		ch   <-chan struct{}
		want bool
	}{{"engine", engine, true}, {"m1", m1, false}, {"m2", m2, true}} {
		select {
		case <-c.ch:
			if !c.want {
				t.Errorf("%s woken, want the wake-up dropped", c.name)
			}
		default:
			if c.want {
				t.Errorf("%s not woken", c.name)
			}
		}
	}
	if want := []string{"scope:", "scope:m1", "scope:m2"}; !slices.Equal(asked, want) {
		t.Errorf("DropNotify asked about %q, want %q (engine first, then machines by ID)", asked, want)
	}
}

func TestExpireWakesEngine(t *testing.T) {
	reg, clock := newRegistry()
	must(t, reg.Heartbeat(t.Context(), core.MachineState{ID: "m1"}, "s1", ttl))
	ch := reg.Notify(t.Context(), core.Scope{})
	clock.Advance(ttl - time.Nanosecond)
	reg.Expire()
	select {
	case <-ch:
		t.Fatal("woken before the TTL ran out")
	default:
	}
	clock.Advance(time.Nanosecond)
	reg.Expire()
	select {
	case <-ch:
	default:
		t.Fatal("not woken by Expire once the TTL ran out")
	}
}
