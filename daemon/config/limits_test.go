package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestLimits: each bound on a configuration file is refused with an error
// naming it, and the largest accepted input just within it loads.
func TestLimits(t *testing.T) {
	manyKeys := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("k%d=v", i)
		}
		return "metadata = " + strings.Join(parts, ",") + "\n"
	}
	cases := []struct {
		name, file, want string
	}{
		{"file size", strings.Repeat("#\n", maxFileBytes/2+1), fmt.Sprintf("larger than the limit of %d bytes", maxFileBytes)},
		{"line length", "# " + strings.Repeat("x", maxLineBytes) + "\n", fmt.Sprintf("fleet.conf:1: line longer than the limit of %d bytes", maxLineBytes)},
		{"metadata keys", manyKeys(maxMetadataKeys + 1), fmt.Sprintf("more than the limit of %d keys", maxMetadataKeys)},
		{"metadata size", "metadata = k=" + strings.Repeat("v", maxMetadataBytes) + "\n", fmt.Sprintf("longer than the limit of %d bytes", maxMetadataBytes)},
	}
	for _, c := range cases {
		if _, _, err := load([]byte(c.file), Sources{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	within := []string{
		strings.Repeat("#\n", maxFileBytes/2),
		"# " + strings.Repeat("x", maxLineBytes-3) + "\n",
		manyKeys(maxMetadataKeys),
		"metadata = k=" + strings.Repeat("v", maxMetadataBytes-len("k=")) + "\n",
	}
	for i, file := range within {
		if _, _, err := load([]byte(file), Sources{}); err != nil {
			t.Errorf("within limit %d: %v", i, err)
		}
	}
}
