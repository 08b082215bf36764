// Command fleetctl is the fleet client: it submits, starts, stops and lists
// the units of a fleet cluster over fleetd's HTTP API or straight on etcd.
// Usage and the deliberate differences from fleet's fleetctl are in
// docs/fleetctl.md.
package main

import (
	"os"
)

func main() {
	a := newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	os.Exit(a.run(os.Args[1:]))
}
