// Package systemdtest starts real systemd user managers for tests and for the
// end-to-end cluster, where each one plays a machine.
//
// Each manager runs as root in a private mount namespace with its own tmpfs
// /run (holding /run/systemd/system), its own XDG_RUNTIME_DIR (a fresh
// temporary directory, which is also where its private D-Bus socket is), its
// own home, optionally its own /etc/machine-id, and its own cgroup subtree in
// every hierarchy systemd uses, so that managers running units of the same name
// never share a cgroup. Stop kills only processes inside that subtree, removes
// the cgroups deepest first and deletes the directory. Several managers can run
// at once.
//
//	um := systemdtest.New(t, systemdtest.Options{Name: "m1", MachineID: id})
//	mgr, err := systemd.Open(ctx, systemd.Config{
//		Scope:   systemd.ScopeUser,
//		Socket:  um.Socket(),
//		UnitDir: filepath.Join(um.RuntimeDir(), "fleet", "units"),
//	})
//
// The manager's /run is private to it, so a unit directory for fleet must be
// outside /run; RuntimeDir (on /dev/shm when that is a tmpfs) is visible to
// both the manager and the test, like the unit files and sockets in it.
//
// New skips the test when no manager can be started here (not root, no
// systemd), except with CI=true, where it fails instead. Outside tests, use
// Start and Stop; scripts/systemd-user-manager.sh does the same from a shell.
package systemdtest
