// Package sim is fleet's deterministic cluster simulator: a whole cluster in
// one process, driven by virtual time, whose every random choice comes from
// one seed, so that a seed replays a run byte for byte (the trace hash proves
// it, on the memory and on the embedded-etcd registry).
//
// # What runs
//
// A Cluster holds machines, each a fake systemd (backends/fakesystemd) and a
// fleetd made of core's agent and, optionally, core's engine; a registry
// (MemoryBackend, or an embedded etcd through EtcdServer); and a queue of
// events in virtual time. The simulator is the driver: it runs one event at
// a time (an agent or engine pass, a systemd job completing, a presence
// expiring, a fault or a user action), then drains every Notify channel
// without blocking and schedules the passes they wake, as the production
// loop does. Nothing else decides who wakes.
//
// # Faults
//
// Machine crashes and returns, fleetd restarts, partitions, a registry
// outage, engine stalls, an engine paused between its snapshot and its write
// (PauseEngineWrite), systemd restarts, units that crash or are stopped
// behind fleet's back, failing starts, clock skew, and registry faults
// injected by wrapping the registry (Intercept, RegistryFaults): timed-out
// calls, lost replies and dropped wake-ups. Heal ends them all.
//
// # What is checked
//
// The invariants of DESIGN.md (leasing, placement, constraints, single
// placement, failover, convergence, nothing lost) are checked after every
// step by a checker that reads the registry and each fake systemd itself and
// applies its own reading of the placement rules (rules.go), not core's.
// Convergence means every machine's systemd runs exactly its share in its
// target states, a launched unit being running or, started once for its
// current revision on the current systemd instance, ended (fleet leaves
// restarting to systemd; a unit stopped by a systemd restart must run again);
// the states the agents publish match what systemd runs; and
// core.CurrentState agrees.
//
// # Using it
//
//	c, _ := sim.New(sim.Config{Seed: 1})
//	defer c.Close()
//	c.AddMachine("m1", nil, true)
//	c.RunFor(time.Second)
//	c.SubmitAndStart("web.service", []byte("[Service]\nExecStart=/bin/sleep infinity\n"))
//	if _, err := c.RunUntilConverged(time.Minute, time.Second); err != nil {
//		// err names the broken invariant and the seed to replay
//	}
//
// Scenario files (Script, RunScenario, testdata/scenarios, examples/) tell a
// story whose output is its expectation; Generate builds large random runs
// (fleetsim gen); the rapid property tests build random histories.
package sim
