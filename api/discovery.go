package api

import (
	_ "embed"
	"net/http"
)

// discoveryJSON is the Google-Discovery-style description of the API served at
// /fleet/v1/discovery. Its rootUrl is the literal "$ENDPOINT/", as in fleet: a
// client replaces it with the address it reached the server at.
//
//go:embed discovery.json
var discoveryJSON []byte

// discovery serves GET /discovery; other methods are a 400, as in fleet.
func (h *handler) discovery(w http.ResponseWriter, r *http.Request) *httpError {
	if r.Method != http.MethodGet {
		return badRequest("only HTTP GET supported against this resource")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(discoveryJSON); err != nil {
		h.log.Debug("api: writing the answer", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	return nil
}
