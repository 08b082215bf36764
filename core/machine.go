package core

import "strings"

// ShortIDLength is the length of a machine's short ID.
const ShortIDLength = 8

// MachineState describes one fleetd machine as it announces itself.
type MachineState struct {
	ID           string
	PublicIP     string
	Metadata     map[string]string
	Capabilities Capabilities
	Version      string
}

// Capabilities are the optional roles of a machine.
type Capabilities struct {
	// DisableEngine: this machine's fleetd never runs the engine.
	DisableEngine bool
}

// ShortID is the first 8 characters of the machine ID.
func (m MachineState) ShortID() string {
	if len(m.ID) <= ShortIDLength {
		return m.ID
	}
	return m.ID[:ShortIDLength]
}

// MatchID reports whether id names this machine, by full or 8-character short ID.
func (m MachineState) MatchID(id string) bool {
	return id != "" && (m.ID == id || (len(id) == ShortIDLength && strings.HasPrefix(m.ID, id)))
}

// MatchMetadata reports whether the machine satisfies a MachineMetadata requirement:
// for every key, the machine has the key and its value is one of the wanted values.
func (m MachineState) MatchMetadata(want map[string][]string) bool {
	for k, values := range want {
		have, ok := m.Metadata[k]
		if !ok || !contains(values, have) {
			return false
		}
	}
	return true
}
