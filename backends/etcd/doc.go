// Package etcd is a core.Registry on etcd v3, and a helper that runs an etcd
// server inside the process (embedded: fleetd's single-machine default, and
// what tests and the simulator use).
//
//	srv, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{Dir: "/var/lib/fleet/etcd"})
//	cli, err := etcd.Dial(ctx, etcd.ClientConfig{Endpoints: srv.Endpoints()})
//	reg, err := etcd.New(cli, etcd.WithPrefix("/_coreos.com/fleet/"))
//	// reg is a core.Registry; close cli, then srv, when done.
//
// # Key layout
//
// Every key is under one prefix (WithPrefix; DefaultPrefix otherwise). Names
// are single key components: unit names, machine IDs and hashes may not
// contain '/'.
//
//	unit/local/<name>          {"hash","target"}   a non-global unit
//	unit/global/<name>         {"hash","target"}   a global unit
//	body/<hash>                unit file contents, stored once per hash
//	ref/<hash>/<name>          ""                  one per unit using body/<hash>
//	sched/<machine>/<unit>     {"hash","target","rev"|"own"}  a placement (schedule entry)
//	where/<unit>/<machine>     ""                  index: exists exactly when the placement does
//	machine/<id>               {"session",...}     presence, under the session's lease
//	meta/<machine>/<key>       value               dynamic metadata ("" hides an announced key)
//	state/<machine>/<unit>     {"hash","load","active","sub"}, under the same lease
//	leader                     {"engine","session"}  leadership, under the engine's lease
//
// The layout serves the reads and watches the core makes:
//
//   - what is scheduled to machine M is one range read (and one watch) of
//     sched/M/; placements mirror the unit's hash and target state, so the
//     agent needs nothing else but the global units, one range read of
//     unit/global/;
//   - Units is one range read of unit/, Placements of sched/, Machines of
//     machine/ and meta/ (one request), UnitStates of state/;
//   - a unit's placements are one range read of where/<unit>/, so that
//     SetTargetState and ReplaceUnit mirror the unit into its placements in
//     the same transaction (agents see a user's change without an engine);
//   - the engine's Notify scope watches unit/, machine/ and sched/; a
//     machine's scope watches sched/<machine>/ and unit/global/. Published
//     states and lease renewals wake nobody.
//
// Values are JSON with explicit field names; unknown fields are ignored, so
// that values written by a newer version are read during a rolling upgrade. A
// value or key this backend cannot read (written by something else, or
// corrupted) never fails a listing: it is left out, logged once with its key
// (WithLogger) and counted (SkippedValues). A call that reads that one key
// fails with a *ValueError naming it; nothing panics. A corrupt unit can still
// be destroyed.
//
// # Contents
//
// CreateUnit writes the unit, body/<hash> (unless present; contents are
// immutable per hash) and ref/<hash>/<name> in one transaction. DestroyUnit
// deletes the unit and its reference, and in a nested transaction the body
// if no other reference is left (the nested comparisons see the store before
// the transaction, and check that the ranges on both sides of the unit's own
// reference are empty). Unlike the memory backend, a placement does not keep
// a body alive: once the last unit using it is destroyed, UnitContents fails
// with core.ErrUnitNotFound even while the engine has not yet removed the
// placement. Counting placements as references would cost a read before every
// schedule write.
//
// # Presence and leadership
//
// Each fleetd session holds one lease per machine: Heartbeat grants it and
// creates machine/<id> (value naming the session) if the key is free, fails
// with core.ErrMachineConflict if another session's record is there, and
// otherwise renews. A renewal that changes nothing is a single keep-alive; a
// changed record is one transaction guarded by the lease. Published states
// are attached to the same lease, so a machine's records vanish together when
// it expires or leaves (Leave revokes the lease). With etcd's TTLs a lease
// keeps the TTL it was granted with (rounded up to whole seconds, and at least
// etcd's minimum of 1.5 election timeouts): a keep-alive restores it, whatever
// TTL the renewal names. With a virtual clock the renewal's TTL applies, as in
// the memory backend. A renewal does not read the record back: a record
// deleted by hand under a live lease stays deleted until the record changes or
// the session starts again.
//
// Leadership is the leader key under the engine's lease, created only if
// absent. Its create revision is the fence's epoch: strictly increasing, and
// changed only by a new acquisition. ApplySchedule and ResignLeadership are
// transactions that compare the leader key's create revision with the epoch
// and its value with the engine, so a deposed engine's writes fail with
// core.ErrStaleFence.
//
// A Registry remembers the leases it granted, so that renewals need no read.
// Another Registry (another process, or this one restarted) with the same
// session adopts the lease it finds. A standby engine reads the leader key
// once and then watches it: while another session holds it, its attempts
// answer core.ErrNotLeader without a request (not with WithClock, whose
// answers must not depend on how fast a watch delivers).
//
// # Store history
//
// The embedded server compacts history older than an hour (configurable) and
// has a backend quota. A Notify watch that resumes at a compacted revision
// wakes its caller, who relists. A reply to a read or a transaction at a
// revision below one seen before it was sent (a restore from an older
// snapshot without --bump-revision, or a new cluster on the same endpoints)
// restarts every Notify watch from the current revision and wakes its caller.
//
// # Atomicity
//
// etcd limits a transaction to --max-txn-ops operations (128 by default).
// ApplySchedule reduces its ops to one per placement (the last op on a
// placement wins, as if applied in order) and writes them in transactions of
// at most WithMaxTxnOps operations, each carrying the fence comparison. A
// batch within the limit is all or nothing. A larger batch is all or nothing
// per transaction: if the engine is deposed between two of them, the first
// ones stay written and the call fails with core.ErrStaleFence, naming how
// many were applied. That is safe for the engine (its next pass, or its
// successor's, reconciles from what is stored), and the only way to exceed it
// is to raise the server's --max-txn-ops together with WithMaxTxnOps.
// PublishUnitStates splits likewise, each part checking the presence.
//
// # Errors and retries
//
// Each attempt of a call runs under the request timeout (WithRequestTimeout).
// An attempt that fails because etcd cannot be reached, has no leader or does
// not answer in time is retried after a doubling backoff, up to WithRetry
// attempts; then the call fails with an error wrapping core.ErrUnavailable
// and etcd's own error. Every write is safe to retry: transactions are
// guarded, and CreateUnit and DestroyUnit recognise their own earlier write
// when a reply was lost (a unit destroyed and re-created by someone else in
// between is left alone). Other etcd errors (permission denied, request too
// large) are returned wrapped, without retrying.
//
// # Access
//
// Dial speaks TLS with the ClientConfig's files and authenticates with its
// user name and password, or, without them, lets etcd take the user from the
// client certificate's common name. A TLS setup a member refuses (its
// certificate not signed by the CA file, ours refused) is found by a
// handshake tried before etcd's client dials, which would otherwise retry
// until its timeout. A refusal of permission names the user and the prefix;
// CheckAccess asks for read and write permission on the whole prefix without
// writing. Package etcdtest starts an etcd with all of it enabled.
//
// # Virtual time
//
// etcd expires leases by its own wall clock. For tests and the simulator,
// WithClock(clock) moves expiry to a core.Clock instead: leases are granted
// with a TTL of a week, this Registry tracks each lease's virtual deadline, and
// every call (and Expire) first revokes the leases whose deadline is not after
// clock.Now(), in order of deadline then key. Renewals then cost no request.
// This mode assumes that every call goes through the one Registry that holds
// the leases (a lease adopted from elsewhere is tracked from its first
// renewal), as the simulator does by serializing its calls; production uses
// etcd's TTLs and no clock. With the calls serialized, the same calls in the
// same order return the same results (revisions aside), and Settle makes the
// wake-ups as deterministic: it waits until every Notify channel has seen
// every revision this Registry has seen.
//
// # Costs
//
// In steady state an agent costs one keep-alive per heartbeat, and the engine
// one keep-alive per leadership renewal; standby engines cost nothing; none
// polls. Reads happen when a
// watch wakes a driver. Per call: Heartbeat renewal 1 request (first: read,
// grant, transaction), AcquireLeadership renewal 1 (standby engine: a read
// and a watch once, then none while the leader lives),
// each listing 1 request, ApplySchedule 1 transaction per about WithMaxTxnOps/2
// placements (each carries its where/ index; a place conditional on the
// unit's revision is a nested transaction), PublishUnitStates 1 transaction
// (plus 1 read when this Registry did not create the presence), CreateUnit
// 1, Unit 1, DestroyUnit, SetTargetState and ReplaceUnit 2, PatchMetadata 1
// per WithMaxTxnOps keys.
package etcd
