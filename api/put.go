package api

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/fleet-rebuild/fleet/core"
)

// putRounds bounds the attempts of one PUT against concurrent writers: a
// create that finds the unit taken, or a replace or state change that finds
// it destroyed, starts over.
const putRounds = 3

// putRequest is a checked PUT /units/<name> body.
type putRequest struct {
	name       string
	desired    core.JobState // "" if the body has none
	submission *core.Submission
}

// putUnit serves PUT /units/<name> in fleet's order (docs/api.md): content
// type, body, name, then create, replace or set the desired state. Every
// check that needs no registry read comes first: a request they reject
// costs no registry call.
func (h *handler) putUnit(w http.ResponseWriter, r *http.Request, name string) *httpError {
	if err := checkContentType(r.Header); err != nil {
		return err
	}
	var body Unit
	if err := h.decodeBody(w, r, &body); err != nil {
		return err
	}
	req, err := checkPut(name, body)
	if err != nil {
		return err
	}
	code, err := h.applyPut(r.Context(), req)
	if err != nil {
		return err
	}
	h.sendEmpty(w, code)
	return nil
}

// checkContentType requires exactly one Content-Type, of media type
// application/json (415 otherwise).
func checkContentType(hdr http.Header) *httpError {
	values := hdr.Values("Content-Type")
	if len(values) != 1 {
		return fail(http.StatusUnsupportedMediaType, fmt.Sprintf("expected 1 Content-Type, got %d", len(values)))
	}
	mt, _, err := mime.ParseMediaType(values[0])
	if err != nil || mt != "application/json" {
		return fail(http.StatusUnsupportedMediaType, "only acceptable Content-Type is application/json")
	}
	return nil
}

// checkPut checks everything about a PUT that needs no registry read.
func checkPut(urlName string, body Unit) (putRequest, *httpError) {
	if body.Name == "" {
		body.Name = urlName
	}
	if body.Name != urlName {
		return putRequest{}, badRequest("name in URL %q differs from unit name in request body %q", urlName, truncate(body.Name, core.MaxUnitNameLength+8))
	}
	if err := core.ValidateName(urlName); err != nil {
		return putRequest{}, badRequest("%v", err)
	}
	req := putRequest{name: urlName}
	if body.DesiredState != "" {
		js, err := core.ParseJobState(body.DesiredState)
		if err != nil {
			return putRequest{}, badRequest("invalid desiredState %q: want inactive, loaded or launched", truncate(body.DesiredState, 64))
		}
		if err := core.CheckActivatable(urlName, js); err != nil {
			return putRequest{}, badRequest("%v", err)
		}
		req.desired = js
	}
	if len(body.Options) > 0 {
		sub, err := prepareOptions(urlName, body.Options)
		if err != nil {
			return putRequest{}, err
		}
		req.submission = &sub
	}
	return req, nil
}

// applyPut decides and writes, starting over (a bounded number of times)
// when the unit vanishes between two registry calls.
func (h *handler) applyPut(ctx context.Context, req putRequest) (int, *httpError) {
	for range putRounds {
		code, gone, err := h.putOnce(ctx, req)
		if !gone {
			return code, err
		}
	}
	return 0, fail(http.StatusConflict, fmt.Sprintf("unit %q was destroyed %d times during the request; retry", req.name, putRounds))
}

// putOnce makes one attempt. Without options it sets the desired state (409
// without one). With options a new unit costs one write (CreateUnit first);
// an existing one is replaced if its contents differ (204, where fleet
// answered 201), else its desired state is set (204). gone reports a unit
// destroyed since the previous call of this attempt.
func (h *handler) putOnce(ctx context.Context, req putRequest) (code int, gone bool, herr *httpError) {
	reg := h.cfg.Registry
	if req.submission == nil {
		if req.desired == "" {
			if _, err := reg.Unit(ctx, req.name); err != nil {
				return 0, false, absentOr(err, fail(http.StatusConflict, msgAbsentNoOpts))
			}
			return 0, false, fail(http.StatusConflict, msgNoDesiredState)
		}
		if err := reg.SetTargetState(ctx, req.name, req.desired); err != nil {
			return 0, false, absentOr(err, fail(http.StatusConflict, msgAbsentNoOpts))
		}
		return http.StatusNoContent, false, nil
	}
	u, contents := req.submission.Unit, req.submission.File.Bytes()
	u.TargetState = orInactive(req.desired)
	err := reg.CreateUnit(ctx, u, contents)
	switch {
	case err == nil:
		return http.StatusCreated, false, nil
	case !errors.Is(err, core.ErrUnitExists):
		return 0, false, registryError(err, msgUnitNotFound)
	}
	existing, err := reg.Unit(ctx, req.name)
	switch {
	case err != nil:
		return 0, errors.Is(err, core.ErrUnitNotFound), absentOr(err, nil)
	case existing.Hash != u.Hash:
		err = reg.ReplaceUnit(ctx, u, contents)
	case req.desired == "":
		return 0, false, fail(http.StatusConflict, msgNoDesiredState)
	default:
		err = reg.SetTargetState(ctx, req.name, req.desired)
	}
	if err != nil {
		return 0, errors.Is(err, core.ErrUnitNotFound), absentOr(err, nil)
	}
	return http.StatusNoContent, false, nil
}

// absentOr maps a registry error: a missing unit to absent, anything else as
// registryError does.
func absentOr(err error, absent *httpError) *httpError {
	if errors.Is(err, core.ErrUnitNotFound) {
		return absent
	}
	return registryError(err, msgUnitNotFound)
}

func orInactive(s core.JobState) core.JobState {
	if s == "" {
		return core.Inactive
	}
	return s
}
