// Package core is fleet's pure logic: the unit model, the [X-Fleet] requirements,
// the job state machine, the scheduler, and the engine and agent reconcile passes.
//
// The core decides; it does not wait. It starts no goroutine, never reads the wall
// clock or a global random source, and performs no I/O of its own: everything it
// needs from the outside comes through the small interfaces in registry.go,
// unitmanager.go and clock.go, and time comes in as a value.
//
// A driver (the production loop in fleetd, or the simulator) calls the passes:
//
//	eng := core.NewEngine(core.EngineConfig{ID: "m1", LeaseTTL: 10 * time.Second}, reg)
//	ag := core.NewAgent(core.AgentConfig{Machine: machine, TTL: 30 * time.Second}, reg, mgr)
//	for {
//		now := clock.Now()
//		eres, err := eng.Reconcile(ctx, now) // decisions, as values
//		ares, err := ag.Reconcile(ctx, now)  // tasks, as values
//		// log, trace and assert on eres and ares; wait for a change or a timer
//	}
package core
