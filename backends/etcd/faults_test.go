package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleet-rebuild/fleet/core"
)

// lossyClient dials the shared server with a client that, while armed, lets
// the next transaction that deletes something reach etcd, runs between (as
// another client acting before the retry) and then reports the reply as lost.
func lossyClient(t *testing.T) (cli *clientv3.Client, arm func(between func())) {
	t.Helper()
	var hook atomic.Pointer[func()]
	cli, err := Dial(t.Context(), ClientConfig{Endpoints: shared.srv.Endpoints(), DialOptions: []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			txn, ok := req.(*etcdserverpb.TxnRequest)
			if !ok || err != nil || !deletes(txn) {
				return err
			}
			if f := hook.Swap(nil); f != nil {
				(*f)()
				return status.Error(codes.Unavailable, "test: reply lost")
			}
			return nil
		}),
	}})
	must(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli, func(between func()) { hook.Store(&between) }
}

func deletes(txn *etcdserverpb.TxnRequest) bool {
	for _, op := range txn.Success {
		if op.GetRequestDeleteRange() != nil {
			return true
		}
	}
	return false
}

// TestDestroyRetryAfterLostReply: a destroy whose reply was lost is retried;
// if another client re-created the unit in between, the retry must not destroy
// the new unit, and the destroy still succeeds (its unit is gone). A lost
// reply with nothing in between is a plain success.
func TestDestroyRetryAfterLostReply(t *testing.T) {
	cli, arm := lossyClient(t)
	prefix := freshPrefix()
	reg, err := New(cli, WithPrefix(prefix))
	must(t, err)
	other, err := New(shared.cli, WithPrefix(prefix))
	must(t, err)
	ctx := t.Context()
	u, c := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, u, c))
	v, vc := testUnit("a.service", false, "new")
	arm(func() { must(t, other.CreateUnit(ctx, v, vc)) })
	if err := reg.DestroyUnit(ctx, "a.service"); err != nil {
		t.Fatalf("DestroyUnit with a lost reply: %v", err)
	}
	got, err := other.Unit(ctx, "a.service")
	if err != nil || got.Hash != v.Hash {
		t.Fatalf("the unit re-created during the retry: got %+v, %v; want it kept", got, err)
	}
	if _, err := other.UnitContents(ctx, v.Hash); err != nil {
		t.Fatalf("contents of the re-created unit: %v", err)
	}

	arm(func() {})
	must(t, reg.DestroyUnit(ctx, "a.service"))
	if _, err := reg.Unit(ctx, "a.service"); !errors.Is(err, core.ErrUnitNotFound) {
		t.Fatalf("after a destroy with a lost reply: %v, want ErrUnitNotFound", err)
	}
}

// TestThousandsOfKeysInOneListing: listings of thousands of units,
// placements and states are complete and sorted (one range read each, well
// under etcd's 1.5 MiB request limit for the writes, which go in batches).
func TestThousandsOfKeysInOneListing(t *testing.T) {
	const n = 5000
	reg, _ := newTestRegistry(t)
	ctx := t.Context()
	var ops []clientv3.Op
	var sched []core.ScheduleOp
	var states []core.UnitState
	for i := range n {
		name := fmt.Sprintf("u%05d.service", i)
		ops = append(ops, clientv3.OpPut(reg.keys.unit(name, false), encode(unitValue{Hash: "h", Target: core.Launched})))
		sched = append(sched, placeOp(name, fmt.Sprintf("m%d", i%7)))
		states = append(states, core.UnitState{Unit: name, Hash: "h", ActiveState: "active"})
	}
	for _, part := range batches(ops, DefaultMaxTxnOps) {
		_, err := shared.cli.Txn(ctx).Then(part...).Commit()
		must(t, err)
	}
	f, err := reg.AcquireLeadership(ctx, "e1", "e1/1", ttl)
	must(t, err)
	must(t, second(reg.ApplySchedule(ctx, f, sched)))
	must(t, reg.Heartbeat(ctx, core.MachineState{ID: "m0"}, "s", ttl))
	must(t, reg.PublishUnitStates(ctx, "m0", "s", states, nil))

	us, err := reg.Units(ctx)
	must(t, err)
	ps, err := reg.Placements(ctx)
	must(t, err)
	ss, err := reg.UnitStates(ctx)
	must(t, err)
	if len(us) != n || len(ps) != n || len(ss) != n {
		t.Fatalf("listed %d units, %d placements, %d states; want %d each", len(us), len(ps), len(ss), n)
	}
	for i := range n {
		name := fmt.Sprintf("u%05d.service", i)
		if us[i].Name != name || ps[i].Unit != name || ss[i].Unit != name {
			t.Fatalf("item %d: unit %s, placement %s, state %s; want %s (sorted, none missing)", i, us[i].Name, ps[i].Unit, ss[i].Unit, name)
		}
	}
	mp, err := reg.MachinePlacements(ctx, "m3")
	must(t, err)
	if want := (n - 3 + 6) / 7; len(mp) != want {
		t.Fatalf("MachinePlacements(m3): %d, want %d", len(mp), want)
	}
}
