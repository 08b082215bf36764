package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Units returns every unit, sorted by name, following the pages.
func (c *Client) Units(ctx context.Context) ([]Unit, error) {
	var all []Unit
	err := pages("/units", func(token string) (string, error) {
		var p UnitPage
		err := c.call(ctx, http.MethodGet, "/units", tokenQuery(nil, token), nil, &p)
		all = append(all, p.Units...)
		return p.NextPageToken, err
	})
	return all, err
}

// Unit returns one unit; an error matching ErrNotFound if it does not exist.
func (c *Client) Unit(ctx context.Context, name string) (Unit, error) {
	var u Unit
	err := c.call(ctx, http.MethodGet, unitPath(name), nil, nil, &u)
	return u, err
}

// CreateUnit submits a new unit: u.Name, u.Options (required) and
// u.DesiredState (empty for inactive). The server answers 201. Under fleet's
// PUT semantics a unit of that name created meanwhile is replaced if its
// options differ (see ReplaceUnit) instead.
func (c *Client) CreateUnit(ctx context.Context, u Unit) error {
	if len(u.Options) == 0 {
		return fmt.Errorf("create unit %s: no options", u.Name)
	}
	return c.putUnit(ctx, u)
}

// ReplaceUnit replaces the options of an existing unit and sets its desired
// state to u.DesiredState (inactive if empty), or creates it if absent. With
// the options it already has, only the desired state is set.
func (c *Client) ReplaceUnit(ctx context.Context, u Unit) error {
	if len(u.Options) == 0 {
		return fmt.Errorf("replace unit %s: no options", u.Name)
	}
	return c.putUnit(ctx, u)
}

// SetUnitTargetState sets the desired state of an existing unit: inactive,
// loaded or launched. A missing unit is a 409 ("unit does not exist and
// options field empty"), as in fleet.
func (c *Client) SetUnitTargetState(ctx context.Context, name, state string) error {
	return c.putUnit(ctx, Unit{Name: name, DesiredState: state})
}

func (c *Client) putUnit(ctx context.Context, u Unit) error {
	body := Unit{Name: u.Name, Options: u.Options, DesiredState: u.DesiredState}
	return c.call(ctx, http.MethodPut, unitPath(u.Name), nil, body, nil)
}

// DestroyUnit removes a unit; an error matching ErrNotFound if it does not
// exist.
func (c *Client) DestroyUnit(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, unitPath(name), nil, nil, nil)
}

// StateFilter selects unit states by exact machine ID and unit name; empty
// fields select all.
type StateFilter struct {
	MachineID, UnitName string
}

// UnitStates returns the published unit states that match f, sorted by unit
// name then machine ID, following the pages.
func (c *Client) UnitStates(ctx context.Context, f StateFilter) ([]UnitState, error) {
	q := url.Values{}
	if f.MachineID != "" {
		q.Set("machineID", f.MachineID)
	}
	if f.UnitName != "" {
		q.Set("unitName", f.UnitName)
	}
	var all []UnitState
	err := pages("/state", func(token string) (string, error) {
		var p UnitStatePage
		err := c.call(ctx, http.MethodGet, "/state", tokenQuery(q, token), nil, &p)
		all = append(all, p.States...)
		return p.NextPageToken, err
	})
	return all, err
}

// UnitState returns the state of one unit (see GET /state/<name> in
// docs/api.md); an error matching ErrNotFound if no machine publishes one.
func (c *Client) UnitState(ctx context.Context, name string) (UnitState, error) {
	var s UnitState
	err := c.call(ctx, http.MethodGet, "/state/"+url.PathEscape(name), nil, nil, &s)
	return s, err
}

// Machines returns the live machines, sorted by ID, following the pages.
func (c *Client) Machines(ctx context.Context) ([]Machine, error) {
	var all []Machine
	err := pages("/machines", func(token string) (string, error) {
		var p MachinePage
		err := c.call(ctx, http.MethodGet, "/machines", tokenQuery(nil, token), nil, &p)
		all = append(all, p.Machines...)
		return p.NextPageToken, err
	})
	return all, err
}

// MetadataChange is one change of PatchMachineMetadata: Op is OpAdd or
// OpReplace (set Key to Value) or OpRemove (delete Key).
type MetadataChange struct {
	Op, Machine, Key, Value string
}

// PatchMachineMetadata applies changes to the machines' dynamic metadata, all
// or none. The machines need not be live.
func (c *Client) PatchMachineMetadata(ctx context.Context, changes []MetadataChange) error {
	ops := make([]MetadataOp, len(changes))
	for i, ch := range changes {
		ops[i] = MetadataOp{Op: ch.Op, Path: "/" + ch.Machine + "/metadata/" + ch.Key, Value: MetadataValue(ch.Value)}
	}
	return c.call(ctx, http.MethodPatch, "/machines", nil, ops, nil)
}

// Discovery returns the server's discovery document.
func (c *Client) Discovery(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	err := c.call(ctx, http.MethodGet, "/discovery", nil, nil, &doc)
	return doc, err
}

// pages calls fetch for each page of a listing, starting without a token,
// until a page has no next token. It stops at a token seen before or after
// maxPages pages, so a misbehaving server cannot keep it looping.
func pages(path string, fetch func(token string) (string, error)) error {
	seen := map[string]bool{}
	token := ""
	for range maxPages {
		next, err := fetch(token)
		if err != nil || next == "" {
			return err
		}
		if seen[next] {
			return fmt.Errorf("GET %s: the server repeated page token %q", path, next)
		}
		seen[next] = true
		token = next
	}
	return errors.New("GET " + path + ": too many pages")
}

// tokenQuery is q plus the page token, if any.
func tokenQuery(q url.Values, token string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	if token != "" {
		out.Set("nextPageToken", token)
	}
	return out
}

func unitPath(name string) string { return "/units/" + url.PathEscape(name) }
