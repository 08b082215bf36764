// Package memory is a core.Registry held in one process's memory, for tests and
// for the cluster simulator.
//
// It behaves as the etcd backend does, as far as core/registry.go documents:
// units are create-once, schedule writes are fenced by the engine's lease epoch
// and applied all or nothing, machine presence and the leadership lease expire
// after their TTL, published unit states vanish with their machine's presence,
// and Notify wakes drivers after each change in their scope. It passes the shared
// conformance suite in backends/registrytest.
//
// # Time and expiry
//
// Leases expire by the injected core.Clock, never by the wall clock, and there is
// no background goroutine: expiry is evaluated against clock.Now() at the start
// of every call, and by Expire, which a driver calls after advancing a virtual
// clock so that Notify subscribers learn at once that a machine vanished:
//
//	clock := memory.NewManualClock(time.Unix(0, 0))
//	reg := memory.New(clock)
//	...
//	clock.Advance(31 * time.Second)
//	reg.Expire() // presences older than their TTL vanish; watchers are woken
//
// # Determinism
//
// Every listing is sorted as core documents it; nothing depends on map order.
// Simultaneous expiries are processed in order of expiry time, then machine ID,
// and fault hooks are consulted in a fixed order, so a driver that serializes its
// calls sees the same results, revisions and hook calls on every run.
//
// # Revisions
//
// Revision counts the writes that change stored records: each successful unit
// write, schedule batch, presence creation, change or removal, state publication
// that changes something, and each leadership acquisition, resignation or expiry
// adds one. Renewing a lease without changing a record is not a write (as an etcd
// keep-alive is not), so a quiet cluster has a steady revision. A new leadership
// epoch is the revision of its acquisition, so epochs strictly increase.
//
// # Faults
//
// SetFaults (or the WithFaults option) installs hooks in the style of
// controller-runtime's interceptor.Funcs: Fail makes a call fail before it takes
// effect, LoseReply makes it fail after it took effect (a reply lost in transit),
// and DropNotify loses the wake-ups of a scope. A simulator sets them from its
// seed:
//
//	reg.SetFaults(memory.Faults{
//		Fail: func(op, machine string) error {
//			if machine == "m2" { // m2 is partitioned from the registry
//				return core.ErrUnavailable
//			}
//			return nil
//		},
//	})
//
// # Performance
//
// MachinePlacements costs O(k log k) for the k placements on that machine (an
// index per machine is kept). Placements, Units, GlobalUnits, Machines and
// UnitStates keep their sorted listing across writes and merge the entries that
// changed into it on the next read, O(n + k log k) for k changes, so a read after
// a small change costs a copy, not a sort. Writes cost O(1) per record, and
// ApplySchedule O(ops). Every returned slice, map and byte slice is a copy the
// caller may keep and modify.
//
// Measured on the 2-core development machine (go test -bench . ./backends/memory):
// ApplySchedule of 1,000 changing placements ~0.2 ms; Placements of 10,000 ~0.4 ms
// unchanged, ~0.8 ms after a one-op change; MachinePlacements among 100,000
// placements on 10,000 machines ~1.6 µs.
package memory
