// Package e2e holds the end-to-end tests of fleet: a three-machine cluster of
// real processes started by cmd/fleet-cluster (real etcd, real systemd user
// managers, real fleetd), driven with the real fleetctl, checked against what
// really runs in each machine's cgroup and manager. docs/e2e.md describes them.
package e2e
