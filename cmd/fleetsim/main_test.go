package main

import (
	"context"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fleetsim runs the command in-process and returns its exit status and streams.
func fleetsim(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(context.Background(), args, streams{out: &out, errOut: &errOut})
	return code, out.String(), errOut.String()
}

// TestExamplesStayTrue checks every shipped example scenario: each output as
// written, every invariant held.
func TestExamplesStayTrue(t *testing.T) {
	files, err := filepath.Glob("../../examples/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example scenarios: %v", err)
	}
	code, out, errOut := fleetsim(t, append([]string{"run", "--check"}, files...)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if !strings.HasPrefix(out, "# seed ") {
		t.Errorf("output does not start with the seed: %.80q", out)
	}
	if n := strings.Count(out, ": ok: "); n != len(files) {
		t.Errorf("%d of %d files reported ok", n, len(files))
	}
}

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

const tinyScenario = "cluster seed=4\n----\n\nadd-machine m1 engine\n----\n\nsubmit a.service\n----\n\nstart a.service\n----\n\nconverge\n----\n%s\ncheck\n----\ninvariants hold\n"

func TestRunCheckFailsOnDifference(t *testing.T) {
	f := writeScenario(t, strings.Replace(tinyScenario, "%s", "nothing like this\n", 1))
	code, _, errOut := fleetsim(t, "run", "--check", f)
	if code != exitExpectation || !strings.Contains(errOut, "output differs") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit %d and the difference", code, errOut, exitExpectation)
	}
	if code, _, _ := fleetsim(t, "run", f); code != exitOK {
		t.Errorf("without --check: exit %d, want %d", code, exitOK)
	}
}

func TestRunSeedAndVerbose(t *testing.T) {
	f := writeScenario(t, strings.Replace(tinyScenario, "%s", "", 1))
	code, out, errOut := fleetsim(t, "run", "--seed", "99", "--verbose", f)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"# seed 99: ", "cluster seed=99\n", " agent: start a.service"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestGen(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace.txt")
	code, out, errOut := fleetsim(t, "gen", "--machines", "6", "--units", "40", "--faults", "heavy", "--duration", "1m", "--seed", "3", "--trace", trace)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, "seed 3\n") || strings.Count(out, " held\n") != 7 || !strings.Contains(out, "result: ok") {
		t.Errorf("report:\n%s", out)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# seed 3\n") || strings.Count(string(data), "\n") < 50 {
		t.Errorf("trace file too short or without the seed:\n%.200s", data)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run"},
		{"run", filepath.Join(t.TempDir(), "missing.txt")},
		{"gen", "--faults", "sometimes"},
		{"gen", "--machines", "0"},
		{"bogus"},
	} {
		if code, _, _ := fleetsim(t, args...); code != exitUsage {
			t.Errorf("fleetsim %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
