// Package api is fleetd's HTTP API v1, compatible with fleet v1.0.0: the wire
// types, the handler fleetd serves, and the Go client fleetctl uses. The
// routes, status codes, limits and the deliberate differences from fleet are
// in docs/api.md.
//
// Handlers translate HTTP to core calls and back; the rules (unit names, unit
// files, [X-Fleet], job states, the derived current state) live in core.
//
// Serving, in fleetd:
//
//	cfg := api.Config{Registry: reg, Version: version, TokenLimit: 100, Logger: log}
//	if err := cfg.Validate(); err != nil {
//		return err
//	}
//	srv := &http.Server{Handler: api.NewHandler(cfg), ReadHeaderTimeout: 10 * time.Second}
//	go srv.Serve(listener)
//
// Calling, in fleetctl:
//
//	c, err := api.NewClient(api.ClientConfig{Endpoint: "unix:///var/run/fleet.sock"})
//	...
//	defer c.Close()
//	u, err := c.Unit(ctx, "hello.service")
//	if errors.Is(err, api.ErrNotFound) { ... }
package api
