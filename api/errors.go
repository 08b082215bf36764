package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/fleet-rebuild/fleet/core"
)

// Error is an error answer of the API: its HTTP status code and message, as in
// the body {"error":{"code":404,"message":"unit does not exist"}}. The client
// returns it for every answer outside 2xx.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("fleet API error %d: %s", e.Code, e.Message)
}

// Is makes errors.Is(err, ErrNotFound) true for a 404,
// errors.Is(err, ErrUnavailable) for a 503 and errors.Is(err, ErrForbidden)
// for a 403.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == http.StatusNotFound
	case ErrUnavailable:
		return e.Code == http.StatusServiceUnavailable
	case ErrForbidden:
		return e.Code == http.StatusForbidden
	}
	return false
}

// Sentinels matched by an *Error's Is method.
var (
	// ErrNotFound: the unit or unit state asked for does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the server cannot reach its registry (503).
	ErrUnavailable = errors.New("fleet server unavailable")
	// ErrForbidden: the client's role does not allow the request (403).
	ErrForbidden = errors.New("access denied")
)

// Messages the server sends, fixed by fleet v1.0.0 where fleet had one.
const (
	msgUnavailable    = "fleet server unable to communicate with etcd"
	msgInternal       = "internal server error"
	msgNotFound       = "not found"
	msgUnitNotFound   = "unit does not exist"
	msgStateNotFound  = "unit state does not exist"
	msgAbsentNoOpts   = "unit does not exist and options field empty"
	msgNoDesiredState = "must provide DesiredState to update existing unit"
)

// httpError is an error answer being built: what the client is told, and,
// for a 5xx, the cause that is logged (once) instead.
type httpError struct {
	code  int
	msg   string
	cause error
	// expected marks a 5xx that is a known state of the server, not a
	// failure (unavailable while starting): logged at Debug only.
	expected bool
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %v", e.code, e.msg, e.cause)
	}
	return fmt.Sprintf("%d %s", e.code, e.msg)
}

// badRequest is a 400 with msg.
func badRequest(format string, args ...any) *httpError {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// fail builds an answer of code with msg.
func fail(code int, msg string) *httpError { return &httpError{code: code, msg: msg} }

// registryError maps an error of a registry call: unreachable backend → 503
// with fleet's message, a missing unit → 404 notFound, anything else → 500
// with a generic message. The cause is kept for the log.
func registryError(err error, notFound string) *httpError {
	switch {
	case errors.Is(err, core.ErrUnitNotFound):
		return &httpError{code: http.StatusNotFound, msg: notFound}
	case errors.Is(err, core.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &httpError{code: http.StatusServiceUnavailable, msg: msgUnavailable, cause: err}
	case errors.Is(err, context.Canceled):
		return &httpError{code: http.StatusServiceUnavailable, msg: "request canceled", cause: err}
	}
	return &httpError{code: http.StatusInternalServerError, msg: msgInternal, cause: err}
}
