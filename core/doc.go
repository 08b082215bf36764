// Package core is fleet's pure logic: the unit model, the [X-Fleet] requirements,
// the job state machine, the scheduler, and the engine and agent reconcile passes.
//
// The core decides; it does not wait. It starts no goroutine, never reads the wall
// clock or a global random source, and performs no I/O of its own: everything it
// needs from the outside comes through the small interfaces in registry.go,
// unitmanager.go and clock.go, and time comes in as a value.
//
// A driver (the production loop in fleetd, or the simulator) owns the goroutines
// and timers and calls the passes. One machine's loop, in outline (errors are
// logged by the driver, and the passes are simply run again later):
//
//	eng, err := core.NewEngine(core.EngineConfig{ID: id, Session: session, LeaseTTL: 10 * time.Second}, reg)
//	ag, err := core.NewAgent(core.AgentConfig{Machine: machine, Session: session, TTL: 30 * time.Second}, reg, mgr)
//	// Subscribe before the first pass reads, so that no change is missed.
//	engineWake := reg.Notify(ctx, core.Scope{})
//	agentWake := reg.Notify(ctx, core.Scope{Machine: id})
//	unitWake := mgr.Notify(ctx)
//	for {
//		now := clock.Now()
//		eres, _ := eng.Reconcile(ctx, now) // decisions, as values
//		ares, _ := ag.Reconcile(ctx, now)  // tasks, as values
//		timer := driverTimer(min(eres.NextWake, ares.NextWake)) // the driver's own timer, not the core's
//		select {
//		case <-engineWake:
//		case <-agentWake:
//		case <-unitWake:
//		case <-timer:
//		case <-ctx.Done():
//			_ = eng.Resign(context.Background())
//			return
//		}
//	}
//
// A production driver runs the engine and the agent on goroutines of their
// own, each woken only by its own channels, and also renews the machine's
// presence (Registry.Heartbeat with the agent's session) on a third, so that a
// slow systemd call never delays a heartbeat; the agent's own renewals are then
// redundant and harmless.
//
// The agent starts a launched unit once per revision of it (see Agent); the
// engine's placements mirror each unit's target state, and the registry keeps
// that mirror current when a user changes it, so starts and stops reach the
// agents without waiting for an engine pass.
package core
