package fleetclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/fleet-rebuild/fleet/api"
)

// apiClient is a Client over fleetd's HTTP API.
type apiClient struct{ c *api.Client }

var _ Client = apiClient{}

// NewAPI returns a Client over the fleetd API at cfg.Endpoint.
func NewAPI(cfg api.ClientConfig) (Client, error) {
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return apiClient{c}, nil
}

// notFound turns the API's answers for a missing unit (404, and the 409 of a
// desired state set on an absent unit) into ErrNotFound, keeping the message.
func notFound(err error) error {
	var ae *api.Error
	if errors.Is(err, api.ErrNotFound) || errors.As(err, &ae) && ae.Code == http.StatusConflict && ae.Message == msgAbsent {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// msgAbsent is the API's answer to a desired state set on an absent unit.
const msgAbsent = "unit does not exist and options field empty"

func (a apiClient) Units(ctx context.Context) ([]api.Unit, error) { return a.c.Units(ctx) }

func (a apiClient) Unit(ctx context.Context, name string) (api.Unit, error) {
	u, err := a.c.Unit(ctx, name)
	return u, notFound(err)
}

func (a apiClient) UnitStates(ctx context.Context) ([]api.UnitState, error) {
	return a.c.UnitStates(ctx, api.StateFilter{})
}

func (a apiClient) Machines(ctx context.Context) ([]api.Machine, error) { return a.c.Machines(ctx) }

func (a apiClient) CreateUnit(ctx context.Context, u api.Unit) error { return a.c.CreateUnit(ctx, u) }

func (a apiClient) ReplaceUnit(ctx context.Context, u api.Unit) error {
	return a.c.ReplaceUnit(ctx, u)
}

func (a apiClient) SetTargetState(ctx context.Context, name, state string) error {
	return notFound(a.c.SetUnitTargetState(ctx, name, state))
}

func (a apiClient) DestroyUnit(ctx context.Context, name string) error {
	return notFound(a.c.DestroyUnit(ctx, name))
}

func (a apiClient) Close() error {
	a.c.Close()
	return nil
}
