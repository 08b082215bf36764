// Package fakesystemd is a core.UnitManager in memory: one machine's systemd
// with a credible state model, jobs that take virtual time, and injectable
// faults. The simulator runs one per simulated machine; tests use it where a
// real systemd is not needed. It passes the unitmanagertest conformance suite.
//
// # Driving it
//
// A Manager has no goroutine and never sleeps. Time comes from the core.Clock
// given to New; every call first applies, in time order, the transitions that
// are due by the clock's time (a job completing, an auto-restart, an injected
// crash). Nothing happens between calls, so a driver of virtual time advances
// its clock and calls Step, which applies due transitions and wakes Notify
// subscribers; NextDeadline tells it when the next transition is due:
//
//	m := fakesystemd.New(clock, fakesystemd.WithJobDuration(100*time.Millisecond))
//	_ = m.WriteUnit(ctx, "web.service", []byte("[Service]\nExecStart=/bin/sleep 3600\n"))
//	_ = m.Reload(ctx)
//	_ = m.Start(ctx, "web.service") // activating/start
//	if at, ok := m.NextDeadline(); ok {
//		clock.AdvanceTo(at) // the driver's clock
//		m.Step()            // web.service is active/running; Notify fires
//	}
//
// Everything is deterministic: units are kept sorted by name, simultaneous
// transitions happen in name order, and no map is iterated. A Manager is safe
// for concurrent use. It keeps only a few hundred bytes per unit (the hash
// and a digest of the file, not the file), and every call costs time linear in
// the number of units on the manager.
//
// # State model
//
// The fake keeps two things per unit, as systemd does: the file in fleet's
// directory, and systemd's view of it, which follows the files only at Reload.
//
//   - Units lists every unit with a file, sorted, with the hash of that file.
//     A unit systemd has never loaded is "not-found"/"inactive"/"dead" until
//     Reload. (Real systemd loads a new file on demand; fleet must not rely on
//     that, and the fake makes the difference visible.) A rewritten file takes
//     effect at Reload; a running unit keeps running, and the new contents
//     apply from its next start.
//   - LoadState is "loaded", "not-found", "bad-setting" (a service without
//     ExecStart=, with several ExecStart= outside Type=oneshot, or oneshot
//     with Restart=always or on-success, as systemd 252 refuses; unknown
//     settings and values are ignored as systemd ignores them, so Type=bogus
//     loads) or "error" (injected).
//   - Start queues a start job: "activating"/"start" for the job duration,
//     then what the main command does, guessed from its name: /bin/false
//     exits 1 ("failed"/"failed"), /bin/true exits 0 ("inactive"/"dead", or
//     "active"/"exited" with RemainAfterExit=yes), anything else runs
//     ("active"/"running") until stopped or crashed. A Type=oneshot command
//     returns when its job completes. Other unit types go "active" with their
//     own sub-state (a socket "listening", a timer "waiting", a target
//     "active").
//   - Stop queues a stop job: "deactivating"/"stop-sigterm", then
//     "inactive"/"dead". A failed unit stays failed (as systemd's stop leaves
//     it), and an inactive one is unchanged.
//   - Restart= (no, always, on-success, on-failure, on-abnormal, on-abort)
//     and RestartSec= are honoured: a unit waits in "activating"/"auto-restart"
//     and starts again. The start limit (StartLimitBurst=, default 5, within
//     StartLimitIntervalSec=, default 10s) fails a unit started once too often.
//   - RemoveUnit stops the unit, resets its failed state and removes its file:
//     Units stops listing it at once, and systemd forgets it once its stop job
//     has completed.
//
// # Faults
//
// SetFaults sets conditions (Faults): start jobs that fail, jobs that never
// complete, units that crash at a given virtual time, files that fail to
// load, calls that return an error (such as a D-Bus error), and a frozen
// manager (every call fails as unavailable and nothing progresses). Events are
// methods: Crash kills a unit's main process now, StopBehindBack stops a unit
// as a person with systemctl would, and Restart restarts the manager: every
// unit stops, runtime state is lost, files in fleet's directory are loaded
// again without Reload, and units with WantedBy=default.target are started.
package fakesystemd
