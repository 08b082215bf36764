package api

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/fleet-rebuild/fleet/core"
)

// listStates serves GET /state: one page of the published unit states sorted
// by unit name then machine ID, filtered by the first machineID and unitName
// parameters (exact match) when given.
func (h *handler) listStates(w http.ResponseWriter, r *http.Request) *httpError {
	q := r.URL.Query()
	tok, herr := pageToken(q, h.cfg.TokenLimit)
	if herr != nil {
		return herr
	}
	states, err := h.cfg.Registry.UnitStates(r.Context())
	if err != nil {
		return registryError(err, msgStateNotFound)
	}
	machine, unit := q.Get("machineID"), q.Get("unitName")
	states = slices.DeleteFunc(states, func(s core.UnitState) bool {
		return (machine != "" && s.Machine != machine) || (unit != "" && s.Unit != unit)
	})
	sortStates(states)
	items, next := page(states, tok)
	out := UnitStatePage{NextPageToken: next}
	for _, s := range items {
		out.States = append(out.States, stateEntity(s))
	}
	h.sendJSON(w, r, http.StatusOK, out)
	return nil
}

// getState serves GET /state/<name>: the state the machine the unit is placed
// on publishes, or else (a global unit, or a unit not placed where it runs)
// the state of the lowest machine ID, so the answer is deterministic.
func (h *handler) getState(w http.ResponseWriter, r *http.Request, name string) *httpError {
	if core.ValidateName(name) != nil {
		return fail(http.StatusNotFound, msgStateNotFound)
	}
	ctx := r.Context()
	all, err := h.cfg.Registry.UnitStates(ctx)
	if err != nil {
		return registryError(err, msgStateNotFound)
	}
	states := slices.DeleteFunc(all, func(s core.UnitState) bool { return s.Unit != name })
	if len(states) == 0 {
		return fail(http.StatusNotFound, msgStateNotFound)
	}
	sortStates(states)
	chosen := states[0]
	if len(states) > 1 {
		placements, err := h.cfg.Registry.Placements(ctx)
		if err != nil {
			return registryError(err, msgStateNotFound)
		}
		if s, ok := placedState(name, placements, states); ok {
			chosen = s
		}
	}
	h.sendJSON(w, r, http.StatusOK, stateEntity(chosen))
	return nil
}

// placedState returns the state published by the lowest machine the unit is
// placed on, among states (sorted by machine).
func placedState(unit string, placements []core.Placement, states []core.UnitState) (core.UnitState, bool) {
	placed := map[string]bool{}
	for _, p := range placements {
		if p.Unit == unit {
			placed[p.Machine] = true
		}
	}
	for _, s := range states {
		if placed[s.Machine] {
			return s, true
		}
	}
	return core.UnitState{}, false
}

func sortStates(states []core.UnitState) {
	slices.SortFunc(states, func(a, b core.UnitState) int {
		return cmp.Or(cmp.Compare(a.Unit, b.Unit), cmp.Compare(a.Machine, b.Machine))
	})
}

func stateEntity(s core.UnitState) UnitState {
	return UnitState{
		Name:               s.Unit,
		Hash:               string(s.Hash),
		MachineID:          s.Machine,
		SystemdLoadState:   s.LoadState,
		SystemdActiveState: s.ActiveState,
		SystemdSubState:    s.SubState,
	}
}
