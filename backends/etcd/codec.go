package etcd

import (
	"bytes"
	"encoding/json"
	"maps"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/fleet-rebuild/fleet/core"
)

// The stored values are small JSON objects with explicit field names. Decoding
// ignores unknown fields, so that values written by a newer version during a
// rolling upgrade are read; a value that does not decode (wrong types, not
// JSON, null) is reported with its key.

// unitValue is the value of unit/local/<name> and unit/global/<name>.
type unitValue struct {
	Hash   core.Hash     `json:"hash"`
	Target core.JobState `json:"target"`
}

// placementValue is the value of sched/<machine>/<unit>. Rev is the revision
// of the unit it mirrors, as the engine planned from it. A placement written in
// the same transaction as its unit (SetTargetState, ReplaceUnit) says Own
// instead: the unit's revision is then the key's own mod revision, which is not
// known before the transaction commits.
type placementValue struct {
	Hash   core.Hash     `json:"hash"`
	Target core.JobState `json:"target"`
	Rev    int64         `json:"rev,omitempty"`
	Own    bool          `json:"own,omitempty"`
}

// placement is the placement of unit on machine this value describes, stored
// at mod revision modRev.
func (v placementValue) placement(unit, machine string, modRev int64) core.Placement {
	rev := v.Rev
	if v.Own {
		rev = modRev
	}
	return core.Placement{Unit: unit, Machine: machine, Hash: v.Hash, TargetState: v.Target, UnitRevision: rev}
}

// machineValue is the value of machine/<id>: the machine's record plus the
// session that holds it.
type machineValue struct {
	Session       string            `json:"session"`
	PublicIP      string            `json:"publicIP,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	DisableEngine bool              `json:"disableEngine,omitempty"`
	Version       string            `json:"version,omitempty"`
}

// stateValue is the value of state/<machine>/<unit>.
type stateValue struct {
	Hash     core.Hash `json:"hash"`
	Load     string    `json:"load"`
	Active   string    `json:"active"`
	Sub      string    `json:"sub"`
	Launched bool      `json:"launched,omitempty"`
}

// leaderValue is the value of the leader key.
type leaderValue struct {
	Engine  string `json:"engine"`
	Session string `json:"session"`
}

// encode marshals v; the types above cannot fail to marshal.
func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("etcd: encoding a fixed value type: " + err.Error())
	}
	return string(b)
}

// decode unmarshals the value of key into v, naming the key on failure.
func decode(key string, value []byte, v any) error {
	if string(bytes.TrimSpace(value)) == "null" {
		return &ValueError{Key: key, Reason: "value is null"}
	}
	if err := json.Unmarshal(value, v); err != nil {
		return &ValueError{Key: key, Reason: "cannot decode value: " + err.Error()}
	}
	return nil
}

func newMachineValue(m core.MachineState, session string) machineValue {
	return machineValue{
		Session:       session,
		PublicIP:      m.PublicIP,
		Metadata:      maps.Clone(m.Metadata),
		DisableEngine: m.Capabilities.DisableEngine,
		Version:       m.Version,
	}
}

func (v machineValue) state(id string) core.MachineState {
	return core.MachineState{
		ID:           id,
		PublicIP:     v.PublicIP,
		Metadata:     v.Metadata,
		Capabilities: core.Capabilities{DisableEngine: v.DisableEngine},
		Version:      v.Version,
	}
}

// decodeUnit reads the unit name from its key-value; its Revision is the key's
// mod revision.
func decodeUnit(kv *mvccpb.KeyValue, name string, global bool) (core.Unit, error) {
	var v unitValue
	if err := decode(string(kv.Key), kv.Value, &v); err != nil {
		return core.Unit{}, err
	}
	return core.Unit{Name: name, Hash: v.Hash, TargetState: v.Target, Global: global, Revision: kv.ModRevision}, nil
}
