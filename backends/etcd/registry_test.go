package etcd

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/core"
)

const ttl = 10 * time.Second

// second returns the error of a call that also returns a value.
func second[T any](_ T, err error) error { return err }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testUnit returns a unit whose contents are derived from body.
func testUnit(name string, global bool, body string) (core.Unit, []byte) {
	contents := []byte("[Service]\nExecStart=/bin/true " + body + "\n")
	return core.Unit{Name: name, Hash: core.HashBytes(contents), TargetState: core.Inactive, Global: global}, contents
}

func placeOp(u, m string) core.ScheduleOp {
	return core.ScheduleOp{Kind: core.OpPlace, Placement: core.Placement{Unit: u, Machine: m, Hash: "h", TargetState: core.Launched}}
}

func unplaceOp(u, m string) core.ScheduleOp {
	return core.ScheduleOp{Kind: core.OpUnplace, Placement: core.Placement{Unit: u, Machine: m}}
}

// keyCount counts the keys under the registry's prefix plus dir.
func keyCount(t *testing.T, reg *Registry, dir string) int64 {
	t.Helper()
	resp, err := shared.cli.Get(t.Context(), reg.keys.dir(dir), clientv3.WithPrefix(), clientv3.WithCountOnly())
	must(t, err)
	return resp.Count
}

func placementList(t *testing.T, reg *Registry) string {
	t.Helper()
	ps, err := reg.Placements(t.Context())
	must(t, err)
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s@%s ", p.Unit, p.Machine)
	}
	return strings.TrimSpace(b.String())
}

// TestContentsCollectedWithLastUnit: contents are stored once per hash and
// removed with the last unit that uses them, leaving no reference behind.
func TestContentsCollectedWithLastUnit(t *testing.T) {
	reg, _ := newTestRegistry(t)
	ctx := t.Context()
	a, contents := testUnit("a.service", false, "same")
	b := a
	b.Name, b.Global = "b.service", true
	must(t, reg.CreateUnit(ctx, a, contents))
	must(t, reg.CreateUnit(ctx, b, contents))
	if n := keyCount(t, reg, dirBody); n != 1 {
		t.Fatalf("%d bodies stored for two units with the same contents, want 1", n)
	}
	must(t, reg.DestroyUnit(ctx, "a.service"))
	if _, err := reg.UnitContents(ctx, a.Hash); err != nil {
		t.Fatalf("UnitContents while b.service still uses them: %v", err)
	}
	must(t, reg.DestroyUnit(ctx, "b.service"))
	if _, err := reg.UnitContents(ctx, a.Hash); !errors.Is(err, core.ErrUnitNotFound) {
		t.Fatalf("UnitContents after the last unit went: got %v, want ErrUnitNotFound", err)
	}
	for _, dir := range []string{dirBody, dirRef, dirUnit} {
		if n := keyCount(t, reg, dir); n != 0 {
			t.Errorf("%d keys left under %s after destroying every unit", n, dir)
		}
	}
}

// TestContentsKeptForOtherHashes: destroying a unit leaves the contents of
// units whose hash sorts before or after it.
func TestContentsKeptForOtherHashes(t *testing.T) {
	reg, _ := newTestRegistry(t)
	ctx := t.Context()
	var units []core.Unit
	for i := range 3 {
		u, c := testUnit(fmt.Sprintf("u%d.service", i), false, fmt.Sprint(i))
		must(t, reg.CreateUnit(ctx, u, c))
		units = append(units, u)
	}
	must(t, reg.DestroyUnit(ctx, "u1.service"))
	for _, u := range []core.Unit{units[0], units[2]} {
		if _, err := reg.UnitContents(ctx, u.Hash); err != nil {
			t.Errorf("UnitContents(%s) after destroying u1: %v", u.Name, err)
		}
	}
}

// TestScheduleOpsOnOnePlacement: several ops on one placement in one batch act
// as if applied in order (etcd itself refuses two writes to one key in a txn).
func TestScheduleOpsOnOnePlacement(t *testing.T) {
	reg, _ := newTestRegistry(t)
	f, err := reg.AcquireLeadership(t.Context(), "e1", "e1/1", ttl)
	must(t, err)
	must(t, second(reg.ApplySchedule(t.Context(), f, []core.ScheduleOp{
		placeOp("a.service", "m1"), unplaceOp("a.service", "m1"),
		unplaceOp("b.service", "m1"), placeOp("b.service", "m1"),
		placeOp("c.service", "m1"), placeOp("c.service", "m1"),
	})))
	if got := placementList(t, reg); got != "b.service@m1 c.service@m1" {
		t.Fatalf("Placements = %q, want b and c on m1", got)
	}
}

// TestSmallTxnLimit splits a batch into many transactions, each fenced.
func TestSmallTxnLimit(t *testing.T) {
	reg, _ := newTestRegistry(t, WithMaxTxnOps(3))
	ctx := t.Context()
	f, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl)
	must(t, err)
	var ops []core.ScheduleOp
	for i := range 10 {
		ops = append(ops, placeOp(fmt.Sprintf("u%d.service", i), "m1"))
	}
	must(t, second(reg.ApplySchedule(ctx, f, ops)))
	if n := keyCount(t, reg, dirSched); n != 10 {
		t.Fatalf("%d placements after a batch of 10 in transactions of 3, want 10", n)
	}
	stale := core.Fence{Engine: "e1", Epoch: f.Epoch + 1}
	if _, err := reg.ApplySchedule(ctx, stale, ops); !errors.Is(err, core.ErrStaleFence) {
		t.Fatalf("split batch with a stale fence: got %v, want ErrStaleFence", err)
	}
	must(t, reg.Heartbeat(ctx, core.MachineState{ID: "m1"}, "s1", ttl))
	var states []core.UnitState
	for i := range 7 {
		states = append(states, core.UnitState{Unit: fmt.Sprintf("u%d.service", i), ActiveState: "active"})
	}
	must(t, reg.PublishUnitStates(ctx, "m1", "s1", states, nil))
	if n := keyCount(t, reg, dirState); n != 7 {
		t.Fatalf("%d states after publishing 7 in transactions of 3, want 7", n)
	}
}

// TestInvalidNamesRejected: names that would break the key layout are refused
// before anything is written.
func TestInvalidNamesRejected(t *testing.T) {
	reg, _ := newTestRegistry(t)
	ctx := t.Context()
	u, c := testUnit("a/b.service", false, "x")
	f, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl)
	must(t, err)
	for name, err := range map[string]error{
		"CreateUnit":        reg.CreateUnit(ctx, u, c),
		"Heartbeat":         reg.Heartbeat(ctx, core.MachineState{ID: "m/1"}, "s", ttl),
		"ApplySchedule":     second(reg.ApplySchedule(ctx, f, []core.ScheduleOp{placeOp("a.service", "")})),
		"ApplySchedule op":  second(reg.ApplySchedule(ctx, f, []core.ScheduleOp{{Kind: 9, Placement: core.Placement{Unit: "a", Machine: "m"}}})),
		"PublishUnitStates": reg.PublishUnitStates(ctx, "m1", "s", []core.UnitState{{Unit: "x/y"}}, nil),
		"MachinePlacements": func() error { _, err := reg.MachinePlacements(ctx, "a/b"); return err }(),
	} {
		if err == nil {
			t.Errorf("%s with an invalid name: no error", name)
		}
	}
	if n := keyCount(t, reg, ""); n != 1 { // the leader key
		t.Fatalf("%d keys written by rejected calls and one acquisition, want 1", n)
	}
}

// TestCorruptValuesNameTheKey: reads of one key report a value this backend
// cannot read with its key, never a panic.
func TestCorruptValuesNameTheKey(t *testing.T) {
	for _, c := range []struct {
		key, value string
		read       func(*Registry) error
	}{
		{"unit/local/a.service", "{not json", func(r *Registry) error { _, err := r.Unit(t.Context(), "a.service"); return err }},
		{"machine/m1", `{"session":1}`, func(r *Registry) error {
			return r.Heartbeat(t.Context(), core.MachineState{ID: "m1"}, "s", ttl)
		}},
		{"machine/m1", `{"session":1}`, func(r *Registry) error { _, err := r.Machine(t.Context(), "m1"); return err }},
		{"leader", `e1`, func(r *Registry) error { _, err := r.AcquireLeadership(t.Context(), "e1", "e1/1", ttl); return err }},
		{"unit/local/a.service", "\x00\xff", func(r *Registry) error { return r.SetTargetState(t.Context(), "a.service", core.Launched) }},
	} {
		reg, _ := newTestRegistry(t)
		key := reg.keys.prefix + c.key
		_, err := shared.cli.Put(t.Context(), key, c.value)
		must(t, err)
		err = c.read(reg)
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Key != key || !strings.Contains(err.Error(), key) {
			t.Errorf("reading %s = %q: got error %v, want a ValueError naming the key", c.key, c.value, err)
		}
	}
}

// TestListingsSkipCorruptValues: one value or key this version cannot read
// (written by a newer fleet, or corrupted) never fails a listing: it is left
// out, logged once with its key and counted, and the rest is listed. Unknown
// fields are ignored.
func TestListingsSkipCorruptValues(t *testing.T) {
	for _, c := range []struct {
		key, value string
		list       func(*Registry) (int, error)
	}{
		{"unit/local/a.service", "{not json", func(r *Registry) (int, error) { us, err := r.Units(t.Context()); return len(us), err }},
		{"unit/global/g.service", "null", func(r *Registry) (int, error) { us, err := r.GlobalUnits(t.Context()); return len(us), err }},
		{"unit/other/x.service", `{}`, func(r *Registry) (int, error) { us, err := r.Units(t.Context()); return len(us), err }},
		{"sched/m1", `{}`, func(r *Registry) (int, error) { ps, err := r.Placements(t.Context()); return len(ps), err }},
		{"sched/m1/a.service", `[1]`, func(r *Registry) (int, error) {
			ps, err := r.MachinePlacements(t.Context(), "m1")
			return len(ps), err
		}},
		{"machine/m1", `{"session":1}`, func(r *Registry) (int, error) { ms, err := r.Machines(t.Context()); return len(ms), err }},
		{"meta/m1", `x`, func(r *Registry) (int, error) { ms, err := r.Machines(t.Context()); return len(ms), err }},
		{"state/m1/a.service/x", `{}`, func(r *Registry) (int, error) { ss, err := r.UnitStates(t.Context()); return len(ss), err }},
	} {
		var logs bytes.Buffer
		reg, _ := newTestRegistry(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		ctx := t.Context()
		good, contents := testUnit("good.service", false, "x")
		must(t, reg.CreateUnit(ctx, good, contents))
		gg, gcontents := testUnit("good-g.service", true, "x")
		must(t, reg.CreateUnit(ctx, gg, gcontents))
		must(t, reg.Heartbeat(ctx, core.MachineState{ID: "m0"}, "s", ttl))
		must(t, reg.PublishUnitStates(ctx, "m0", "s", []core.UnitState{{Unit: "good.service"}}, nil))
		f, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl)
		must(t, err)
		must(t, second(reg.ApplySchedule(ctx, f, []core.ScheduleOp{placeOp("good.service", "m1"), placeOp("good.service", "m0")})))
		key := reg.keys.prefix + c.key
		_, err = shared.cli.Put(ctx, key, c.value)
		must(t, err)
		for range 2 {
			n, err := c.list(reg)
			if err != nil || n != 1 && n != 2 {
				t.Errorf("listing with %s = %q: %d items, error %v; want the good ones and no error", c.key, c.value, n, err)
			}
		}
		if got := strings.Count(logs.String(), key); got != 1 {
			t.Errorf("%s = %q: logged %d times, want once with its key; log:\n%s", c.key, c.value, got, logs.String())
		}
		if got := reg.SkippedValues(); got != 1 {
			t.Errorf("%s = %q: SkippedValues %d, want 1", c.key, c.value, got)
		}
	}
}

// TestUnknownFieldsIgnored: a value written by a newer version with fields
// this one does not know is read, not refused.
func TestUnknownFieldsIgnored(t *testing.T) {
	reg, _ := newTestRegistry(t)
	key := reg.keys.unit("g.service", true)
	_, err := shared.cli.Put(t.Context(), key, `{"hash":"h","target":"launched","extra":{"x":1}}`)
	must(t, err)
	us, err := reg.Units(t.Context())
	must(t, err)
	if len(us) != 1 || us[0].Hash != "h" || us[0].TargetState != core.Launched || !us[0].Global {
		t.Fatalf("Units = %+v, want g.service read with its known fields", us)
	}
	if reg.SkippedValues() != 0 {
		t.Fatalf("SkippedValues %d, want 0", reg.SkippedValues())
	}
}

// TestDestroyCorruptUnit: a unit whose value cannot be read can still be
// destroyed, so that an operator can clean up.
func TestDestroyCorruptUnit(t *testing.T) {
	reg, _ := newTestRegistry(t)
	_, err := shared.cli.Put(t.Context(), reg.keys.unit("a.service", false), "garbage")
	must(t, err)
	must(t, reg.DestroyUnit(t.Context(), "a.service"))
	us, err := reg.Units(t.Context())
	must(t, err)
	if len(us) != 0 {
		t.Fatalf("Units after destroying the corrupt unit: %v", us)
	}
}

// TestPrefixesIsolate: registries with different prefixes share nothing.
func TestPrefixesIsolate(t *testing.T) {
	a, _ := newTestRegistry(t)
	b, _ := newTestRegistry(t)
	u, c := testUnit("a.service", false, "x")
	must(t, a.CreateUnit(t.Context(), u, c))
	must(t, b.CreateUnit(t.Context(), u, c))
	if _, err := b.AcquireLeadership(t.Context(), "e2", "e2/1", ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AcquireLeadership(t.Context(), "e1", "e1/1", ttl); err != nil {
		t.Fatalf("leadership under another prefix blocks this one: %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"relative prefix": WithPrefix("fleet/"),
		"zero timeout":    WithRequestTimeout(0),
		"zero attempts":   WithRetry(0, time.Millisecond),
		"tiny txn":        WithMaxTxnOps(1),
	} {
		if _, err := New(shared.cli, opt); err == nil {
			t.Errorf("New with %s: no error", name)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New without a client: no error")
	}
}
