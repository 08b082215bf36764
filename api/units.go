package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fleet-rebuild/fleet/core"
)

// resolveRounds bounds the re-reads of a unit whose contents vanish while it
// is read (the unit was replaced or destroyed in between).
const resolveRounds = 3

// listUnits serves GET /units: one page of units sorted by name.
func (h *handler) listUnits(w http.ResponseWriter, r *http.Request) *httpError {
	tok, herr := pageToken(r.URL.Query(), h.cfg.TokenLimit)
	if herr != nil {
		return herr
	}
	ctx := r.Context()
	units, err := h.cfg.Registry.Units(ctx)
	if err != nil {
		return registryError(err, msgUnitNotFound)
	}
	slices.SortFunc(units, func(a, b core.Unit) int { return strings.Compare(a.Name, b.Name) })
	items, next := page(units, tok)
	sched, err := h.scheduleOf(ctx, items)
	if err != nil {
		return registryError(err, msgUnitNotFound)
	}
	out := UnitPage{NextPageToken: next}
	for _, u := range items {
		u, opts, found, err := h.resolve(ctx, u)
		if err != nil {
			return registryError(err, msgUnitNotFound)
		}
		if found {
			out.Units = append(out.Units, sched.entity(u, opts))
		}
	}
	h.sendJSON(w, r, http.StatusOK, out)
	return nil
}

// getUnit serves GET /units/<name>.
func (h *handler) getUnit(w http.ResponseWriter, r *http.Request, name string) *httpError {
	if core.ValidateName(name) != nil {
		return fail(http.StatusNotFound, msgUnitNotFound)
	}
	ctx := r.Context()
	u, err := h.cfg.Registry.Unit(ctx, name)
	if err != nil {
		return registryError(err, msgUnitNotFound)
	}
	u, opts, found, err := h.resolve(ctx, u)
	if err != nil {
		return registryError(err, msgUnitNotFound)
	}
	if !found {
		return fail(http.StatusNotFound, msgUnitNotFound)
	}
	sched, err := h.scheduleOf(ctx, []core.Unit{u})
	if err != nil {
		return registryError(err, msgUnitNotFound)
	}
	h.sendJSON(w, r, http.StatusOK, sched.entity(u, opts))
	return nil
}

// deleteUnit serves DELETE /units/<name>: one registry write.
func (h *handler) deleteUnit(w http.ResponseWriter, r *http.Request, name string) *httpError {
	if core.ValidateName(name) != nil {
		return fail(http.StatusNotFound, msgUnitNotFound)
	}
	if err := h.cfg.Registry.DestroyUnit(r.Context(), name); err != nil {
		return registryError(err, msgUnitNotFound)
	}
	h.sendEmpty(w, http.StatusNoContent)
	return nil
}

// resolve returns u with the options of its contents. If the contents are
// gone, the unit is read again (it was replaced meanwhile); found is false if
// the unit itself is gone.
func (h *handler) resolve(ctx context.Context, u core.Unit) (core.Unit, []UnitOption, bool, error) {
	for range resolveRounds {
		opts, err := h.unitOptions(ctx, u.Hash)
		if err == nil {
			return u, opts, true, nil
		}
		if !errors.Is(err, core.ErrUnitNotFound) {
			return u, nil, false, err
		}
		again, err := h.cfg.Registry.Unit(ctx, u.Name)
		switch {
		case errors.Is(err, core.ErrUnitNotFound):
			return u, nil, false, nil
		case err != nil:
			return u, nil, false, err
		case again.Hash == u.Hash:
			return u, nil, false, fmt.Errorf("unit %s: contents %s missing from the registry", u.Name, u.Hash)
		}
		u = again
	}
	return u, nil, false, fmt.Errorf("unit %s: contents kept changing while read", u.Name)
}

// schedule is what the derived fields of a Unit come from: the placements
// of the units concerned and their cluster-level states.
type schedule struct {
	placements map[string][]core.Placement
	current    core.ClusterStates
}

// scheduleOf reads the placements and states, unless every unit is global
// (global units have no cluster-level state nor placement).
func (h *handler) scheduleOf(ctx context.Context, units []core.Unit) (schedule, error) {
	s := schedule{placements: map[string][]core.Placement{}}
	if !slices.ContainsFunc(units, func(u core.Unit) bool { return !u.Global }) {
		return s, nil
	}
	ps, err := h.cfg.Registry.Placements(ctx)
	if err != nil {
		return s, err
	}
	sts, err := h.cfg.Registry.UnitStates(ctx)
	if err != nil {
		return s, err
	}
	for _, p := range ps {
		s.placements[p.Unit] = append(s.placements[p.Unit], p)
	}
	s.current = core.CurrentStates(ps, sts)
	return s, nil
}

// entity is the Unit entity of u: currentState and machineID only for a
// non-global unit, machineID only if placed (the lowest machine ID in the
// transient case of several placements).
func (s schedule) entity(u core.Unit, opts []UnitOption) Unit {
	out := Unit{Name: u.Name, Options: opts, DesiredState: string(u.TargetState)}
	if u.Global {
		return out
	}
	ps := s.placements[u.Name]
	out.CurrentState = string(s.current.Of(u.Name))
	if len(ps) > 0 {
		out.MachineID = slices.MinFunc(ps, func(a, b core.Placement) int { return strings.Compare(a.Machine, b.Machine) }).Machine
	}
	return out
}
