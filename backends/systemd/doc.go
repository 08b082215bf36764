// Package systemd is fleet's core.UnitManager over a real systemd manager, the
// system manager or a user manager (systemd --user), reached through the
// manager's private D-Bus socket with go-systemd.
//
// Fleet owns one directory of unit files (Config.UnitDir). WriteUnit puts a file
// there and links it into the manager at runtime; Units lists that directory and
// asks systemd for the states of exactly those units in one ListUnitsByNames
// call; Notify wakes its readers from the manager's PropertiesChanged signals
// (never by polling), with a slow resync as a safety net. When the manager
// restarts or the connection drops, Manager reconnects in the background with
// bounded backoff and wakes Notify so the caller lists again.
//
// Every D-Bus call is bounded by Config.CallTimeout; a call the manager does
// not answer in time (a hung manager) fails with an error wrapping
// core.ErrUnavailable, as one on a dropped connection does, so that the
// agent retries it later as it retries an unreachable registry. Open repairs
// what a fleetd that died mid-task left behind (temporary files, links of
// removed units, files written but never reloaded), and Units reloads the
// manager before it reports a unit whose loaded definition is older than its
// file (NeedDaemonReload). Names longer than systemd's 255 bytes are refused.
//
//	mgr, err := systemd.Open(ctx, systemd.Config{Scope: systemd.ScopeUser})
//	if err != nil { ... }
//	defer mgr.Close()
//	_ = mgr.WriteUnit(ctx, "hello.service", data)
//	_ = mgr.Reload(ctx)
//	_ = mgr.Start(ctx, "hello.service")
//	for range mgr.Notify(ctx) {
//		units, err := mgr.Units(ctx) // LOAD/ACTIVE/SUB of fleet's units
//		...
//	}
//
// Two choices work around go-systemd v22.7.0: job result channels are buffered
// (an unread result would block every other job on the connection), and unit
// signals are read from the connection directly rather than through
// SetSubStateSubscriber or SetPropertiesSubscriber, whose dispatch loop reads
// the subscriber fields without a lock (a data race, go-systemd issue #519),
// logs through the global logger, and makes a synchronous GetUnit call for
// every finished job.
//
// The subpackage systemdtest starts real user managers for tests.
package systemd
