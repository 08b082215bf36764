package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// prefixes are the roots the API is mounted at: fleet's v1 and its legacy
// name.
var prefixes = []string{"/fleet/v1", "/v1-alpha"}

// handler serves the API. It is safe for concurrent use.
type handler struct {
	cfg      Config
	log      *slog.Logger
	contents *contentsCache
}

// NewHandler returns the HTTP handler of the v1 API, mounted at /fleet/v1 and
// /v1-alpha, plus /metrics and /health when configured. It panics if
// cfg.Validate fails: validate the configuration first.
func NewHandler(cfg Config) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	return &handler{cfg: cfg, log: cfg.Logger, contents: newContentsCache(contentsCacheSize)}
}

// recorder remembers the status code a handler wrote.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	rec.Header().Set("Server", "fleetd/"+h.cfg.Version)
	route := h.serve(rec, r)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	d := time.Since(start)
	h.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "code", rec.code, "duration", d)
	if h.cfg.Observe != nil {
		h.cfg.Observe(route, methodLabel(r.Method), rec.code, d)
	}
}

// serve routes one request and returns its route label. While the server is
// unavailable every API path is answered 503, known or not.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) string {
	if err := h.authorize(r); err != nil {
		h.sendError(w, r, err)
		return h.match(r.URL.Path).label
	}
	switch p := r.URL.Path; {
	case p == "/metrics" && h.cfg.Metrics != nil:
		h.cfg.Metrics.ServeHTTP(w, r)
		return routeMetrics
	case p == "/health" && h.cfg.Health != nil:
		h.cfg.Health.ServeHTTP(w, r)
		return routeHealth
	}
	rt := h.match(r.URL.Path)
	err := h.available()
	if err == nil {
		err = rt.serve(w, r)
	}
	if err != nil {
		h.sendError(w, r, err)
	}
	return rt.label
}

// available is the 503 of an unavailable server, or nil.
func (h *handler) available() *httpError {
	if h.cfg.Available == nil {
		return nil
	}
	if err := h.cfg.Available(); err != nil {
		return &httpError{code: http.StatusServiceUnavailable, msg: msgUnavailable, cause: err, expected: true}
	}
	return nil
}

// route is what a path leads to: its label for Observe and what serves it.
type route struct {
	label string
	serve handlerFunc
}

// handlerFunc serves a request; a returned error is sent.
type handlerFunc func(w http.ResponseWriter, r *http.Request) *httpError

// match applies fleet's routing rules: "/" and each bare prefix are 405,
// unknown paths and item paths with a trailing slash or a further segment are
// 404.
func (h *handler) match(p string) route {
	if p == "/" {
		return route{routeOther, notAllowed}
	}
	for _, prefix := range prefixes {
		if p == prefix {
			return route{routeOther, notAllowed}
		}
		if rest, ok := strings.CutPrefix(p, prefix+"/"); ok {
			return h.matchResource(rest)
		}
	}
	return route{routeOther, notFound}
}

// matchResource matches the path rest below a prefix.
func (h *handler) matchResource(rest string) route {
	collection, item, isItem := strings.Cut(rest, "/")
	if isItem && (item == "" || strings.Contains(item, "/")) {
		return route{routeOther, notFound}
	}
	withItem := func(f func(http.ResponseWriter, *http.Request, string) *httpError) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request) *httpError { return f(w, r, item) }
	}
	switch {
	case collection == "discovery" && !isItem:
		return route{routeDiscovery, h.discovery}
	case collection == "units" && !isItem:
		return route{routeUnits, methods{http.MethodGet: h.listUnits}.serve}
	case collection == "units":
		return route{routeUnit, methods{
			http.MethodGet:    withItem(h.getUnit),
			http.MethodPut:    withItem(h.putUnit),
			http.MethodDelete: withItem(h.deleteUnit),
		}.serve}
	case collection == "state" && !isItem:
		return route{routeStates, methods{http.MethodGet: h.listStates}.serve}
	case collection == "state":
		return route{routeState, methods{http.MethodGet: withItem(h.getState)}.serve}
	case collection == "machines" && !isItem:
		return route{routeMachines, methods{http.MethodGet: h.listMachines, http.MethodPatch: h.patchMachines}.serve}
	}
	return route{routeOther, notFound}
}

// methods serves a resource by method.
type methods map[string]handlerFunc

// serve runs the function for r's method, or answers 405 with an Allow header.
func (m methods) serve(w http.ResponseWriter, r *http.Request) *httpError {
	if f, ok := m[r.Method]; ok {
		return f(w, r)
	}
	var allowed []string
	for _, name := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if _, ok := m[name]; ok {
			allowed = append(allowed, name)
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return fail(http.StatusMethodNotAllowed, "only "+strings.Join(allowed, ", ")+" supported against this resource")
}

// notAllowed is the 405 of the paths that are no resource, for every method.
func notAllowed(w http.ResponseWriter, _ *http.Request) *httpError {
	w.Header().Set("Allow", "")
	return fail(http.StatusMethodNotAllowed, "method not allowed")
}

// notFound is the 404 of unknown paths.
func notFound(http.ResponseWriter, *http.Request) *httpError {
	return fail(http.StatusNotFound, msgNotFound)
}

// methodLabel bounds the methods Observe sees to the standard ones.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// sendJSON writes v as the JSON body of a code answer.
func (h *handler) sendJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		h.sendError(w, r, &httpError{code: http.StatusInternalServerError, msg: msgInternal, cause: err})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if _, err := w.Write(body); err != nil {
		h.log.Debug("api: writing the answer", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

// sendEmpty writes a code answer without a body.
func (h *handler) sendEmpty(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
}

// sendError writes e's answer and logs its cause, once: failures of the
// server at Error level, the others (client errors, unavailability, a client
// gone) at Debug.
func (h *handler) sendError(w http.ResponseWriter, r *http.Request, e *httpError) {
	level := slog.LevelDebug
	switch {
	case e.code >= 500 && !e.expected && r.Context().Err() == nil:
		level = slog.LevelError
	case e.code == http.StatusForbidden:
		level = slog.LevelWarn
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "code", e.code, "message", e.msg}
	if e.cause != nil {
		attrs = append(attrs, "err", e.cause)
	}
	h.log.Log(r.Context(), level, "api request failed", attrs...)
	h.sendJSON(w, r, e.code, errorBody{Error: &Error{Code: e.code, Message: e.msg}})
}
