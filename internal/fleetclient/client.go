// Package fleetclient is what fleetctl talks to: one small interface over the
// cluster, with two implementations that give the same answers, the fleetd
// HTTP API (NewAPI) and the etcd registry read and written directly
// (NewEtcd). It speaks the API's wire types, so that both drivers print the
// same.
//
//	c, err := fleetclient.NewAPI(api.ClientConfig{Endpoint: "unix:///var/run/fleet.sock"})
//	...
//	defer c.Close()
//	u, err := c.Unit(ctx, "hello.service")
//	if errors.Is(err, fleetclient.ErrNotFound) { ... }
package fleetclient

import (
	"context"
	"errors"

	"github.com/fleet-rebuild/fleet/api"
)

// ErrNotFound is returned (wrapped) for a unit that does not exist.
var ErrNotFound = errors.New("not found")

// Client reads and changes the cluster's units. Every call is bounded by the
// driver's request timeout as well as by ctx.
type Client interface {
	// Units lists every unit, sorted by name, with its derived current state
	// and machine (none for global units).
	Units(ctx context.Context) ([]api.Unit, error)
	// Unit returns one unit; ErrNotFound if absent.
	Unit(ctx context.Context, name string) (api.Unit, error)
	// UnitStates lists every state the machines publish, sorted by unit then
	// machine.
	UnitStates(ctx context.Context) ([]api.UnitState, error)
	// Machines lists the live machines, sorted by ID.
	Machines(ctx context.Context) ([]api.Machine, error)
	// CreateUnit stores a new unit with u.Options and u.DesiredState
	// (inactive if empty).
	CreateUnit(ctx context.Context, u api.Unit) error
	// ReplaceUnit replaces the contents of an existing unit; its desired
	// state becomes u.DesiredState, or inactive if empty.
	ReplaceUnit(ctx context.Context, u api.Unit) error
	// SetTargetState sets an existing unit's desired state; ErrNotFound if
	// absent.
	SetTargetState(ctx context.Context, name, state string) error
	// DestroyUnit removes a unit; ErrNotFound if absent.
	DestroyUnit(ctx context.Context, name string) error
	// Close releases the connections.
	Close() error
}
