package sim

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the scenario files in testdata/scenarios: each command's
// output is its expectation. Regenerate with -rewrite after a reviewed change.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		s := NewScript(nil)
		defer s.Close()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			words := []string{d.Cmd}
			for _, a := range d.CmdArgs {
				words = append(words, a.String())
			}
			out, err := s.Exec(words, d.Input)
			if err != nil {
				t.Fatalf("%s: %v", d.Pos, err)
			}
			return out
		})
		if c := s.Cluster(); c != nil && len(c.Violations()) > 0 {
			t.Errorf("%s: invariants broken: %v", path, c.Violations())
		}
	})
}
