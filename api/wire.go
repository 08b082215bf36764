package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The entities of the v1 API, as fleet v1.0.0 puts them on the wire. Every
// field is omitted when empty, as in fleet: an empty list is "{}".

// UnitOption is one Name=Value line of a unit file, with its section.
type UnitOption struct {
	Section string `json:"section,omitempty"`
	Name    string `json:"name,omitempty"`
	Value   string `json:"value,omitempty"`
}

// Unit is a submitted unit. In a PUT request only Name, Options and
// DesiredState are read; CurrentState and MachineID are derived by the server.
type Unit struct {
	Name    string       `json:"name,omitempty"`
	Options []UnitOption `json:"options,omitempty"`
	// DesiredState is inactive, loaded or launched.
	DesiredState string `json:"desiredState,omitempty"`
	// CurrentState is the cluster-level state; omitted for global units.
	CurrentState string `json:"currentState,omitempty"`
	// MachineID is the machine the unit is placed on; omitted if unscheduled
	// or global.
	MachineID string `json:"machineID,omitempty"`
}

// UnitPage is one page of GET /units, sorted by name.
type UnitPage struct {
	Units         []Unit `json:"units,omitempty"`
	NextPageToken string `json:"nextPageToken,omitempty"`
}

// UnitState is what one machine publishes for one unit: systemd's view and
// the hash of the unit file it runs.
type UnitState struct {
	Name               string `json:"name,omitempty"`
	Hash               string `json:"hash,omitempty"`
	MachineID          string `json:"machineID,omitempty"`
	SystemdLoadState   string `json:"systemdLoadState,omitempty"`
	SystemdActiveState string `json:"systemdActiveState,omitempty"`
	SystemdSubState    string `json:"systemdSubState,omitempty"`
}

// UnitStatePage is one page of GET /state, sorted by name then machine ID.
type UnitStatePage struct {
	States        []UnitState `json:"states,omitempty"`
	NextPageToken string      `json:"nextPageToken,omitempty"`
}

// Machine is one live machine, with its announced metadata merged with the
// metadata set through PATCH /machines.
type Machine struct {
	ID        string            `json:"id,omitempty"`
	PrimaryIP string            `json:"primaryIP,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// MachinePage is one page of GET /machines, sorted by ID.
type MachinePage struct {
	Machines      []Machine `json:"machines,omitempty"`
	NextPageToken string    `json:"nextPageToken,omitempty"`
}

// The operations of PATCH /machines.
const (
	OpAdd     = "add"
	OpRemove  = "remove"
	OpReplace = "replace"
)

// MetadataOp is one operation of a PATCH /machines body: Op is add, replace
// or remove, Path is /<machineID>/metadata/<key>.
type MetadataOp struct {
	Op    string        `json:"op"`
	Path  string        `json:"path"`
	Value MetadataValue `json:"value,omitempty"`
}

// MetadataValue is the value of a MetadataOp. It is sent nested,
// {"value":"x"}, which fleet v1.0.0 servers require, and read in that form or
// as a plain JSON string, the form fleet's documentation shows.
type MetadataValue string

// MarshalJSON writes the nested form.
func (v MetadataValue) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Value string `json:"value"`
	}{string(v)})
}

var errMetadataValue = errors.New(`value must be a string or {"value": string}`)

// UnmarshalJSON reads a plain string, the nested form, or null (no value).
func (v *MetadataValue) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*v = ""
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*v = MetadataValue(s)
		return nil
	case len(data) > 0 && data[0] == '{':
		var nested struct {
			Value *string `json:"value"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&nested); err != nil {
			return fmt.Errorf("%w: %v", errMetadataValue, err)
		}
		if nested.Value != nil {
			*v = MetadataValue(*nested.Value)
		}
		return nil
	}
	return errMetadataValue
}

// errorBody is the body of every error answer.
type errorBody struct {
	Error *Error `json:"error"`
}
