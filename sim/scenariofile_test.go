package sim

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseScenario(t *testing.T) {
	text := "# comment\ncluster seed=3\n----\n\nsubmit a.service\n[Service]\nExecStart=/bin/true\n----\nline one\nline two\n\n" +
		"run \\\n  5s\n----\n----\nfirst\n\nafter a blank\n----\n----\n\ncheck\n----\ninvariants hold\n"
	steps, err := ParseScenario("t.txt", text)
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{
		{Pos: "t.txt:2", Words: []string{"cluster", "seed=3"}},
		{Pos: "t.txt:5", Words: []string{"submit", "a.service"}, Input: "[Service]\nExecStart=/bin/true", Want: "line one\nline two\n"},
		{Pos: "t.txt:12", Words: []string{"run", "5s"}, Want: "first\n\nafter a blank\n"},
		{Pos: "t.txt:22", Words: []string{"check"}, Want: "invariants hold\n"},
	}
	if !reflect.DeepEqual(steps, want) {
		t.Errorf("got  %#v\nwant %#v", steps, want)
	}
	for _, bad := range []string{"check\nno separator\n", "\\\n\n----\n", "run 1s\n----\n----\nunclosed\n",
		"check\n---- \n\nrun 1h\n----\n", "check\n----\r\n", "run 1s\n----\n \ncheck\n----\n", "run 1s\n----\n----\nx\n ----\n----\n", "", "# only a comment\n\n"} {
		if _, err := ParseScenario("bad.txt", bad); err == nil {
			t.Errorf("ParseScenario(%q) accepted a malformed file", bad)
		}
	}
}

// TestRunScenarioMatchesGoldenFiles runs the scenario files with this parser
// and runner, plainly and verbosely: every output must match.
func TestRunScenarioMatchesGoldenFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := ParseScenario(f, string(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, verbose := range []bool{false, true} {
			res, err := RunScenario(steps, RunOptions{Verbose: verbose}, func(r StepResult) {
				if !r.Matches() {
					t.Errorf("%s: %s (verbose=%t):\ngot:\n%swant:\n%s", r.Pos, r.Command(), verbose, r.Got, r.Want)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Violations) > 0 {
				t.Errorf("%s: %v", f, res.Violations)
			}
		}
	}
}

func TestWithSeed(t *testing.T) {
	steps := WithSeed([]Step{{Words: []string{"cluster", "seed=1", "ttl=5s"}}, {Words: []string{"check"}}}, 77)
	if got, err := ScenarioSeed(steps); err != nil || got != 77 {
		t.Errorf("seed %d, %v; want 77", got, err)
	}
	if want := []string{"cluster", "seed=77", "ttl=5s"}; !reflect.DeepEqual(steps[0].Words, want) {
		t.Errorf("words %v, want %v", steps[0].Words, want)
	}
}
