// Package chaos puts a cluster of real processes (fleetd, systemd --user
// managers, etcd, brought up by cmd/fleet-cluster) through faults — a fleetd
// killed, frozen past agent_ttl, the engine leader frozen, a machine's link
// down or its packets dropped, the clock jumped — and judges fleet by the
// processes in each machine's cgroups and by a log of unit starts. See
// docs/chaos.md.
package chaos
