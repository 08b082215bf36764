package etcd

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

// woken reports whether ch holds a wake-up right now, consuming it.
func woken(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitWake fails the test unless ch receives within 5 s.
func waitWake(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("after %s: channel closed", after)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("after %s: no wake-up", after)
	}
}

// TestSettleMakesWakeUpsDeterministic: after Settle, the wake-ups of every
// change made so far are in the channels, and those of no other change.
func TestSettleMakesWakeUpsDeterministic(t *testing.T) {
	reg, clock := newTestRegistry(t)
	ctx := t.Context()
	engine := reg.Notify(ctx, core.Scope{})
	m1 := reg.Notify(ctx, core.Scope{Machine: "m1"})
	m2 := reg.Notify(ctx, core.Scope{Machine: "m2"})
	f, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl)
	must(t, err)
	must(t, reg.Settle(ctx))
	for i, ch := range []<-chan struct{}{engine, m1, m2} {
		if woken(ch) {
			t.Fatalf("channel %d woken by leadership, which is in no scope", i)
		}
	}
	steps := []struct {
		name                     string
		do                       func() error
		wantEngine, want1, want2 bool
	}{
		{"place on m1", func() error { return second(reg.ApplySchedule(ctx, f, []core.ScheduleOp{placeOp("a.service", "m1")})) }, true, true, false},
		{"join m2", func() error { return reg.Heartbeat(ctx, core.MachineState{ID: "m2"}, "s2", ttl) }, true, false, false},
		{"publish on m2", func() error {
			return reg.PublishUnitStates(ctx, "m2", "s2", []core.UnitState{{Unit: "a.service"}}, nil)
		}, false, false, false},
		{"global unit", func() error {
			u, c := testUnit("g.service", true, "g")
			return reg.CreateUnit(ctx, u, c)
		}, true, true, true},
		{"m2 expires", func() error { clock.Advance(2 * ttl); return reg.Expire(ctx) }, true, false, false},
	}
	for _, s := range steps {
		must(t, s.do())
		must(t, reg.Settle(ctx))
		for i, c := range []struct {
			ch   <-chan struct{}
			want bool
		}{{engine, s.wantEngine}, {m1, s.want1}, {m2, s.want2}} {
			if got := woken(c.ch); got != c.want {
				t.Errorf("%s: scope %d woken = %v, want %v", s.name, i, got, c.want)
			}
		}
	}
}

// TestNotifyRelistsAfterCompaction: a watch that resumes from a revision etcd
// has compacted away wakes its caller (who relists) and continues from the
// compaction point.
func TestNotifyRelistsAfterCompaction(t *testing.T) {
	reg, _ := newTestRegistry(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	u, c := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, u, c))
	resp, err := shared.cli.Get(ctx, "compact-me")
	must(t, err)
	_, err = shared.cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	must(t, err)

	// A watch that last delivered revision 1, as after a long disconnection.
	out := make(chan struct{}, 1)
	w := &scopeWatch{keyRange: reg.prefixRange(reg.keys.dir(dirUnit)), next: 2, progress: reg.watches.add()}
	n := &notifier{r: reg, out: out, ready: make(chan struct{}), watches: []*scopeWatch{w}}
	go n.run(ctx)
	waitWake(t, out, "resuming from a compacted revision")
	must(t, reg.Settle(ctx)) // the watch caught up from the compaction point
	woken(out)
	b, bc := testUnit("b.service", false, "b")
	must(t, reg.CreateUnit(ctx, b, bc))
	waitWake(t, out, "a change after the relist")
	cancel()
	for range out {
	}
}

// TestNotifyClosedWhenCancelledEarly: a context already done yields a closed
// channel and no watch.
func TestNotifyClosedWhenCancelledEarly(t *testing.T) {
	reg, _ := newTestRegistry(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, ok := <-reg.Notify(ctx, core.Scope{}); ok {
		t.Fatal("Notify with a done context: channel not closed")
	}
}

// waitClosed fails the test unless ch is closed within 5 s (wake-ups before
// that are drained).
func waitClosed(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("after %s: channel not closed", after)
		}
	}
}

// TestNotifyClosedWithClient: a Notify whose client is closed, before the
// call or while it watches, closes its channel although its context is live.
func TestNotifyClosedWithClient(t *testing.T) {
	cli := dial(t, ClientConfig{Endpoints: shared.srv.Endpoints()})
	reg, err := New(cli, WithPrefix(freshPrefix()), WithRequestTimeout(300*time.Millisecond))
	must(t, err)
	ch := reg.Notify(t.Context(), core.Scope{})
	must(t, reg.Settle(t.Context()))
	cli.Close()
	waitClosed(t, ch, "closing the client while watching")
	waitClosed(t, reg.Notify(t.Context(), core.Scope{Machine: "m1"}), "Notify on a closed client")
}
