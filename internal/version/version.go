// Package version holds the version of fleetd and fleetctl, set at build time
// with -ldflags "-X github.com/fleet-rebuild/fleet/internal/version.Version=...".
package version

// Version is this build's version.
var Version = "0.1.0-dev"
