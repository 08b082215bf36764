package core

// MergeMetadata returns a copy of m with dynamic metadata applied (the
// values set through the API's PATCH /machines): a value overrides the one
// the machine announced, an empty value removes the key. m is not changed.
func MergeMetadata(m MachineState, dynamic map[string]string) MachineState {
	if len(dynamic) == 0 {
		return m
	}
	merged := make(map[string]string, len(m.Metadata)+len(dynamic))
	for k, v := range m.Metadata {
		merged[k] = v
	}
	for k, v := range dynamic {
		if v == "" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	m.Metadata = nil
	if len(merged) > 0 {
		m.Metadata = merged
	}
	return m
}
