// Command fleetctl is the fleet client: it submits, starts, stops and lists
// the units of a fleet cluster over fleetd's HTTP API or straight on etcd.
// Usage and the deliberate differences from fleet's fleetctl are in
// docs/fleetctl.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
