package sim

import (
	"strings"
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
		if len(s.Unmet()) > 0 {
			t.Errorf("%s: %v", path, s.Unmet())
		}
	})
}

// TestExpectations checks each kind of expectation, met (no output) and unmet
// (a line, remembered by Unmet).
func TestExpectations(t *testing.T) {
	s := NewScript(nil)
	defer s.Close()
	unit := "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\n"
	steps := []struct{ cmd, input, want string }{
		{"cluster seed=1", "", ""},
		{"add-machine m1 engine", "", ""},
		{"add-machine m2", "", ""},
		{"run 1s", "", ""},
		{"submit web.service", "", ""},
		{"submit cache.service", unit + "MachineOf=web.service", ""},
		{"submit db.service", unit + "Conflicts=web.service", ""},
		{"start web.service cache.service db.service", "", ""},
		{"expect active", "", "expectation not met: cache.service is not active: it runs nowhere\n"},
		{"expect active web.service by=5s", "", ""},
		{"expect active", "", ""},
		{"expect on web.service m2", "", ""},
		{"expect on web.service m1", "", "expectation not met: web.service is on m2, not on m1\n"},
		{"expect not-on db.service m2", "", ""},
		{"expect not-on db.service m1", "", "expectation not met: db.service is on m1\n"},
		{"expect follows cache.service web.service", "", ""},
		{"expect follows db.service web.service", "", "expectation not met: db.service is on m1, web.service on m2\n"},
		{"add-machine m3", "", ""},
		{"crash m2", "", ""},
		{"expect active web.service by=30s", "", "expectation not met: web.service is not active: its machine m2 is down by 30s\n"},
		{"expect active web.service by=45s", "", ""},
		{"expect on web.service m3", "", ""},
		{"expect restarts web.service max=1", "", ""},
		{"expect restarts web.service max=0", "", "expectation not met: web.service restarted 1 times, want at most 0\n"},
	}
	for _, st := range steps {
		out, err := s.Exec(strings.Fields(st.cmd), st.input)
		if err != nil {
			t.Fatalf("%s: %v", st.cmd, err)
		}
		if st.cmd != "run 1s" && !strings.HasPrefix(st.cmd, "expect active") && out != st.want {
			t.Errorf("%s: got %q, want %q", st.cmd, out, st.want)
		}
		if strings.HasPrefix(st.cmd, "expect active") && !strings.HasSuffix(out, st.want) {
			t.Errorf("%s: got %q, want it to end in %q", st.cmd, out, st.want)
		}
	}
	if got := len(s.Unmet()); got != 6 {
		t.Errorf("%d unmet expectations remembered, want 6: %q", got, s.Unmet())
	}
}

// TestScriptRefusesWithoutPanic gives every command no, one, two and three
// arguments of every kind: each is run or refused with an error, never a panic.
func TestScriptRefusesWithoutPanic(t *testing.T) {
	args := [][]string{nil, {"m1"}, {"a.service"}, {"m1", "a.service"}, {"m1", "1s"}, {"x=1"}, {"a.service", "m1", "m2"}, {"-1s"}, {"on"}, {"active", "by=-1s"}, {"restarts", "a.service", "max=x"}}
	names := append(strings.Split(commandNames(), ", "), "")
	for _, cmd := range names {
		for _, a := range args {
			s := NewScript(nil)
			for _, setup := range []string{"cluster seed=1", "add-machine m1 engine", "submit a.service", "start a.service", "run 1s"} {
				if _, err := s.Exec(strings.Fields(setup), ""); err != nil {
					t.Fatalf("%s: %v", setup, err)
				}
			}
			words := append([]string{cmd}, a...)
			if cmd == "" {
				words = a
			}
			s.Exec(words, "")
			s.Exec(words, "some input")
			s.Close()
		}
	}
}
