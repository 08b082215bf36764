package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/fleet-rebuild/fleet/core"
)

// listMachines serves GET /machines: one page of the live machines sorted by
// ID, each with its merged metadata.
func (h *handler) listMachines(w http.ResponseWriter, r *http.Request) *httpError {
	tok, herr := pageToken(r.URL.Query(), h.cfg.TokenLimit)
	if herr != nil {
		return herr
	}
	machines, err := h.cfg.Registry.Machines(r.Context())
	if err != nil {
		return registryError(err, msgNotFound)
	}
	sortMachines(machines)
	items, next := page(machines, tok)
	out := MachinePage{NextPageToken: next}
	for _, m := range items {
		out.Machines = append(out.Machines, Machine{ID: m.ID, PrimaryIP: m.PublicIP, Metadata: maps.Clone(m.Metadata)})
	}
	h.sendJSON(w, r, http.StatusOK, out)
	return nil
}

func sortMachines(ms []core.MachineState) {
	slices.SortFunc(ms, func(a, b core.MachineState) int { return strings.Compare(a.ID, b.ID) })
}

// metadataPath is fleet's pattern of a metadata op's path.
var metadataPath = regexp.MustCompile(`^/([^/]+)/metadata/([A-Za-z0-9_.-]+)$`)

// patchMachines serves PATCH /machines: every op is checked first (400 naming
// the first bad one), then all are applied in one atomic registry write.
func (h *handler) patchMachines(w http.ResponseWriter, r *http.Request) *httpError {
	var ops []MetadataOp
	if err := h.decodeBody(w, r, &ops); err != nil {
		return err
	}
	changes, herr := metadataChanges(ops)
	if herr != nil {
		return herr
	}
	if len(changes) > 0 {
		if err := h.cfg.Registry.PatchMetadata(r.Context(), changes); err != nil {
			return registryError(err, msgNotFound)
		}
	}
	h.sendEmpty(w, http.StatusNoContent)
	return nil
}

// metadataChanges checks ops and turns them into registry operations: add
// and replace set the key, remove deletes it.
func metadataChanges(ops []MetadataOp) ([]core.MetadataOp, *httpError) {
	if len(ops) > MaxMetadataOps {
		return nil, badRequest("patch has %d operations, more than the limit of %d", len(ops), MaxMetadataOps)
	}
	out := make([]core.MetadataOp, 0, len(ops))
	for i, op := range ops {
		c, err := metadataChange(op)
		if err != nil {
			return nil, badRequest("ops[%d]: %v", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func metadataChange(op MetadataOp) (core.MetadataOp, error) {
	if op.Op != OpAdd && op.Op != OpRemove && op.Op != OpReplace {
		return core.MetadataOp{}, fmt.Errorf("invalid op %q: expect add, remove, or replace", truncate(op.Op, 64))
	}
	m := metadataPath.FindStringSubmatch(op.Path)
	if m == nil {
		return core.MetadataOp{}, fmt.Errorf("machine metadata path %q invalid: want /<machineID>/metadata/<key>, the key of [A-Za-z0-9_.-]", truncate(op.Path, 128))
	}
	machine, key, value := m[1], m[2], string(op.Value)
	switch {
	case len(machine) > MaxMachineIDLength || hasControl(machine):
		return core.MetadataOp{}, fmt.Errorf("machine ID in path %q invalid: at most %d bytes, no control characters", truncate(op.Path, 128), MaxMachineIDLength)
	case len(key) > MaxMetadataKeyLength:
		return core.MetadataOp{}, fmt.Errorf("metadata key is %d bytes, more than the limit of %d", len(key), MaxMetadataKeyLength)
	case op.Op == OpRemove:
		return core.MetadataOp{Machine: machine, Key: key}, nil
	case value == "":
		return core.MetadataOp{}, errors.New("invalid value: add and replace require a value")
	case len(value) > MaxMetadataValueLength:
		return core.MetadataOp{}, fmt.Errorf("value is %d bytes, more than the limit of %d", len(value), MaxMetadataValueLength)
	case hasControl(value):
		return core.MetadataOp{}, errors.New("value must not contain control characters")
	}
	return core.MetadataOp{Machine: machine, Key: key, Value: value}, nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}
