// Package unitmanagertest is the conformance suite for core.UnitManager: one set
// of tests that every implementation must pass, the in-memory fake
// (backends/fakesystemd) and the D-Bus backend on a real systemd manager
// (backends/systemd) alike.
//
// A backend's test calls Run with a constructor that returns a fresh, empty
// manager for each subtest:
//
//	func TestConformance(t *testing.T) {
//		unitmanagertest.Run(t, func(t *testing.T) unitmanagertest.Instance {
//			clock := newTestClock()
//			m := fakesystemd.New(clock)
//			return unitmanagertest.Instance{
//				Manager: m,
//				Settle:  func() { clock.Advance(50 * time.Millisecond); m.Step() },
//			}
//		})
//	}
//
// The suite checks only documented behaviour of the interface and of systemd:
// it never assumes that a job completes within the call that queued it, and
// it reads no state between WriteUnit and Reload beyond what the interface
// promises (the unit is listed, with the hash of its file). It waits by
// polling Units with Settle between polls, a bounded number of times
// (MaxSettles), and reports the states it saw when a wait runs out.
//
// Every unit the suite writes is a real service unit that a systemd user
// manager runs: a sleeper (/bin/sleep 3600), a crasher (/bin/false), a
// sleeper with an [Install] section, a sleeper without a start limit (started
// and stopped many times in a row), and a service without ExecStart=, which
// systemd refuses to load ("bad-setting"). Names are checked up to systemd's
// limit of 255 bytes (MaxNameLength): one byte more must be refused.
package unitmanagertest
