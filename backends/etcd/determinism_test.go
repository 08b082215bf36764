package etcd

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// TestVirtualTimeIsDeterministic runs one history of serialized calls twice,
// each on a fresh prefix with its own virtual clock, and compares everything
// the calls returned and every wake-up after each step (revisions left out):
// what the simulator needs from this backend.
func TestVirtualTimeIsDeterministic(t *testing.T) {
	first, second := history(t), history(t)
	if first != second {
		t.Fatalf("two runs of one history differ:\n--- first\n%s\n--- second\n%s", first, second)
	}
	if !strings.Contains(first, "m2 gone") || !strings.Contains(first, "e2 leads") {
		t.Fatalf("history did not reach its expiries:\n%s", first)
	}
}

// history runs the scripted calls and returns their transcript.
func history(t *testing.T) string {
	reg, clock := newTestRegistry(t)
	ctx := t.Context()
	var log strings.Builder
	scopes := []core.Scope{{}, {Machine: "m1"}, {Machine: "m2"}, {Machine: "m3"}}
	chans := make([]<-chan struct{}, len(scopes))
	for i, s := range scopes {
		chans[i] = reg.Notify(ctx, s)
	}
	var fence core.Fence
	epoch := map[int64]string{}
	step := func(name string, do func() (string, error)) {
		out, err := do()
		must(t, reg.Settle(ctx))
		var woke []string
		for i, ch := range chans {
			if woken(ch) {
				woke = append(woke, fmt.Sprintf("scope%d", i))
			}
		}
		fmt.Fprintf(&log, "%s: %s err=%v woke=%v\n", name, out, errKind(err), woke)
	}
	acquire := func(engine string) func() (string, error) {
		return func() (string, error) {
			f, err := reg.AcquireLeadership(ctx, engine, engine+"/1", ttl)
			if err != nil {
				return "", err
			}
			fence = f
			if _, ok := epoch[f.Epoch]; !ok {
				epoch[f.Epoch] = fmt.Sprintf("epoch%d", len(epoch)+1)
			}
			return engine + " leads " + epoch[f.Epoch], nil
		}
	}
	listing := func() (string, error) {
		ms, err := reg.Machines(ctx)
		if err != nil {
			return "", err
		}
		ss, err := reg.UnitStates(ctx)
		if err != nil {
			return "", err
		}
		ps, err := reg.Placements(ctx)
		return fmt.Sprintf("machines=%v states=%v placements=%v", ms, ss, ps), err
	}
	for _, id := range []string{"m1", "m2", "m3"} {
		step("join "+id, func() (string, error) {
			return "", reg.Heartbeat(ctx, core.MachineState{ID: id, Metadata: map[string]string{"id": id}}, "s-"+id, ttl)
		})
	}
	for i, name := range []string{"a.service", "g.service", "b.service"} {
		step("create "+name, func() (string, error) {
			u, c := testUnit(name, i == 1, name)
			return "", reg.CreateUnit(ctx, u, c)
		})
	}
	step("acquire e1", acquire("e1"))
	step("acquire e2", acquire("e2"))
	step("schedule", func() (string, error) {
		return "", second(reg.ApplySchedule(ctx, fence, []core.ScheduleOp{placeOp("a.service", "m1"), placeOp("b.service", "m2")}))
	})
	step("publish m2", func() (string, error) {
		return "", reg.PublishUnitStates(ctx, "m2", "s-m2", []core.UnitState{{Unit: "b.service", ActiveState: "active"}}, nil)
	})
	step("advance 6s", func() (string, error) { clock.Advance(6 * time.Second); return "", reg.Expire(ctx) })
	step("renew m1 m3 e1", func() (string, error) {
		for _, id := range []string{"m1", "m3"} {
			if err := reg.Heartbeat(ctx, core.MachineState{ID: id, Metadata: map[string]string{"id": id}}, "s-"+id, ttl); err != nil {
				return "", err
			}
		}
		return acquire("e1")()
	})
	step("advance 6s", func() (string, error) { clock.Advance(6 * time.Second); return "m2 gone", reg.Expire(ctx) })
	step("list", listing)
	step("advance 11s", func() (string, error) { clock.Advance(11 * time.Second); return "", reg.Expire(ctx) })
	step("acquire e2", acquire("e2"))
	step("stale schedule", func() (string, error) {
		return "", second(reg.ApplySchedule(ctx, core.Fence{Engine: "e1", Epoch: fence.Epoch - 1}, []core.ScheduleOp{unplaceOp("a.service", "m1")}))
	})
	step("list", listing)
	return log.String()
}

// errKind names the sentinel err wraps; messages may carry revisions.
func errKind(err error) string {
	if err == nil {
		return "nil"
	}
	for _, s := range []error{core.ErrNotLeader, core.ErrStaleFence, core.ErrMachineConflict, core.ErrNotPresent, core.ErrUnitExists, core.ErrUnitNotFound} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return err.Error()
}
