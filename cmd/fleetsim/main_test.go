package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/sim"
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
	for _, backend := range []string{"memory", "etcd"} {
		t.Run(backend, func(t *testing.T) {
			files := files
			if backend == "etcd" {
				files = smallOnEtcd(t, files)
			}
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where the embedded etcd keeps its data
			code, out, errOut := fleetsim(t, append([]string{"run", "--check", "--backend", backend}, files...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			if !strings.HasPrefix(out, "# seed ") {
				t.Errorf("output does not start with the seed: %.80q", out)
			}
			if n := strings.Count(out, ": ok: "); n != len(files) {
				t.Errorf("%d of %d files reported ok", n, len(files))
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("the embedded etcd left %d entries in TMPDIR, e.g. %s", len(left), left[0].Name())
			}
		})
	}
}

// etcdLargeMachines is the number of machines from which an example runs on
// etcd only with FLEETSIM_ETCD_ALL=1: every machine watches the registry, so
// each write wakes them all, and 200 machines take minutes on a busy machine.
const etcdLargeMachines = 50

// smallOnEtcd returns the files with fewer than etcdLargeMachines machines, or
// all of them with FLEETSIM_ETCD_ALL=1.
func smallOnEtcd(t *testing.T, files []string) []string {
	t.Helper()
	if os.Getenv("FLEETSIM_ETCD_ALL") == "1" {
		return files
	}
	var small []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), "\nadd-machine "); n >= etcdLargeMachines {
			t.Logf("%s: %d machines, run on etcd only with FLEETSIM_ETCD_ALL=1", f, n)
			continue
		}
		small = append(small, f)
	}
	return small
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

// TestScenarioMistakesAreRefused runs scenarios with one mistake each: every
// one exits 2, before running anything long, naming the line and the value.
func TestScenarioMistakesAreRefused(t *testing.T) {
	const head = "cluster seed=1\n----\n\nadd-machine m1 engine\n----\n\n"
	for _, c := range []struct{ text, want string }{
		{"cluster ttl=-1s\n----\n", "s.txt:1: cluster: ttl -1s out of range: want 1s to 24h0m0s"},
		{"cluster ttl=1ns\n----\n", "ttl 1ns out of range: want 1s to 24h0m0s"},
		{"cluster job=0s\n----\n", "job 0s out of range: want 1ms to 1h0m0s"},
		{"cluster skew=2h\n----\n", "skew 2h out of range: want 0s to 1h0m0s"},
		{"cluster seed=-1\n----\n", "seed \"-1\": want a whole number from 0 to 18446744073709551615"},
		{"cluster sed=5\n----\n", "s.txt:1: cluster: unknown option \"sed=5\": want seed=, ttl=, job=, skew=, backend="},
		{"cluster backend=zk\n----\n", "unknown backend \"zk\", want etcd or memory"},
		{head + "cluster seed=2\n----\n", "s.txt:7: cluster: a scenario builds one cluster"},
		{head + "run 100000h\n----\n", "s.txt:7: run: duration 100000h out of range: want 0s to 24h0m0s"},
		{head + "run soon\n----\n", "duration \"soon\" is not a duration"},
		{head + "converge max=0s\n----\n", "max 0s out of range: want 1ms to 24h0m0s"},
		{head + "stall-engine m1 -5s\n----\n", "duration -5s out of range"},
		{"cluster\n----\n\nadd-machine m1 engin\n----\n", "s.txt:4: add-machine: unexpected word \"engin\""},
		{head + "check\nstray input\n----\n", "s.txt:7: check: takes no input"},
		{head + "crash m1 m2\n----\n", "crash: unexpected word \"m2\""},
		{head + "crash m9\n----\n", "s.txt:7: crash: no machine \"m9\""},
		{head + "stall-engine m9 5s\n----\n", "stall-engine: no machine \"m9\""},
		{head + "run 1s verbose=yes\n----\n", "run: unknown option \"verbose=yes\": the command takes no options"},
		{head + "converge max=1s max=2s\n----\n", "\"max\" is given twice"},
		{head + "frobnicate\n----\n", "s.txt:7: frobnicate: unknown command"},
		{head + "start web.service\n----\n", "s.txt:7: start: web.service was never submitted: submit it first"},
		{head + "submit web.service\n[Service\n----\nerror: whatever\n\nstart web.service\n----\n", "s.txt:12: start: web.service: its submit failed"},
		{head + "submit a.service\n----\n\nstart a.service\n---- \n\nrun 1h\n----\n", "s.txt:11: \"---- \": a separator is exactly \"----\""},
		{head + "run 1s\n----\n  \ncheck\n----\n", "s.txt:9: a line of only spaces"},
		{"add-machine m1\n----\n", "s.txt:1: add-machine: the first command must be cluster"},
		{head + "expect\n----\n", "expect: missing kind"},
		{head + "expect soon a.service\n----\n", "unknown kind \"soon\""},
		{head + "submit a.service\n----\n\nexpect restarts a.service\n----\n", "restarts: missing max=N"},
		{head + "submit a.service\n----\n\nexpect restarts a.service max=-1\n----\n", "max=-1: want a whole number from 0 to 1000000"},
		{head + "run 10s\n----\n\nsubmit a.service\n----\n\nexpect active a.service by=5s\n----\n", "by=5s is already past: the clock is at 10s"},
		{head + "expect on b.service m1\n----\n", "on: no unit \"b.service\" was submitted"},
		{head + "submit a.service\n----\n\nexpect on a.service m9\n----\n", "on: no machine \"m9\""},
	} {
		f := writeScenario(t, c.text)
		code, _, errOut := fleetsim(t, "run", f)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("scenario:\n%s\nexit %d, stderr:\n%s\nwant exit %d and %q", c.text, code, errOut, exitUsage, c.want)
		}
	}
}

// TestGenRefusesOutOfRange: each value that cannot fit in memory or time is
// refused up front, naming the value and its range.
func TestGenRefusesOutOfRange(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "1000000h"}, "duration 1000000h0m0s out of range: want 0 to 24h0m0s"},
		{[]string{"--duration", "-1s"}, "duration -1s out of range"},
		{[]string{"--machines", "1000000"}, "1000000 machines out of range: want 1 to 10000"},
		{[]string{"--machines", "0"}, "0 machines out of range"},
		{[]string{"--units", "10000000"}, "10000000 units out of range: want 0 to 1000000"},
		{[]string{"--units", "-1"}, "-1 units out of range"},
		{[]string{"--machines", "2", "--engines", "5"}, "5 engines out of range: want 1 to the 2 machines"},
		{[]string{"--faults", "sometimes"}, "faults \"sometimes\""},
		{[]string{"--backend", "zk"}, "--backend \"zk\""},
		{[]string{"--seed", "-1"}, "invalid argument \"-1\" for \"--seed\""},
	} {
		code, _, errOut := fleetsim(t, append([]string{"gen"}, c.args...)...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("gen %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, exitUsage, c.want)
		}
	}
	// The largest accepted sizes are accepted (the check runs before anything).
	cfg := sim.GenConfig{Machines: sim.MaxGenMachines, Units: sim.MaxGenUnits, Duration: sim.MaxGenDuration}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the largest sizes are refused: %v", err)
	}
	if code, _, errOut := fleetsim(t, "gen", "--machines", "1", "--units", "3", "--faults", "none", "--duration", "1s", "--seed", "1"); code != exitOK {
		t.Errorf("one machine with the default engines: exit %d\n%s", code, errOut)
	}
}

// TestExitStatuses: each outcome has its own status, and in a batch every file
// runs and the worst status wins.
func TestExitStatuses(t *testing.T) {
	const head = "cluster seed=1\n----\n\nadd-machine m1 engine\n----\n\nsubmit web.service\n----\n\nstart web.service\n----\n\n"
	ok := writeScenario(t, head+"expect active web.service by=5s\n----\n\nexpect on web.service m1\n----\n")
	invariant := writeScenario(t, head+"converge max=50ms\n----\n")
	unmet := writeScenario(t, head+"converge\n----\n\nexpect not-on web.service m1\n----\n")
	bad := writeScenario(t, head+"run forever\n----\n")
	for _, c := range []struct {
		files []string
		want  int
	}{
		{[]string{ok}, exitOK},
		{[]string{invariant}, exitInvariant},
		{[]string{unmet}, exitExpectation},
		{[]string{bad}, exitUsage},
		{[]string{unmet, invariant, ok}, exitInvariant},
		{[]string{bad, unmet, invariant, ok}, exitUsage},
	} {
		code, out, errOut := fleetsim(t, append([]string{"run"}, c.files...)...)
		if code != c.want {
			t.Errorf("run %v: exit %d, want %d\n%s", c.files, code, c.want, errOut)
		}
		if n := strings.Count(out, "# seed 1: "); n != len(c.files) {
			t.Errorf("run %v: %d of %d files ran", c.files, n, len(c.files))
		}
	}
	code, _, errOut := fleetsim(t, "run", unmet)
	if code != exitExpectation || !strings.Contains(errOut, "expectation not met: web.service is on m1") {
		t.Errorf("unmet expectation: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestWorseStatus(t *testing.T) {
	for _, c := range [][3]int{
		{exitOK, exitExpectation, exitExpectation},
		{exitInvariant, exitExpectation, exitInvariant},
		{exitUsage, exitInvariant, exitUsage},
		{exitInternal, exitUsage, exitInternal},
		{exitInternal, exitInterrupted, exitInterrupted},
	} {
		if got := worse(c[0], c[1]); got != c[2] {
			t.Errorf("worse(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
		if got := worse(c[1], c[0]); got != c[2] {
			t.Errorf("worse(%d, %d) = %d, want %d", c[1], c[0], got, c[2])
		}
	}
}

func TestRunHelpListsTheCommands(t *testing.T) {
	_, out, _ := fleetsim(t, "run", "--help")
	for _, want := range []string{"add-machine ID", "expect restarts NAME max=N", "stall-engine", "registry-faults", "130 interrupted", "--backend"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --help lacks %q:\n%s", want, out)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != "" {
		os.RemoveAll(filepath.Dir(built.bin))
	}
	os.Exit(code)
}

// TestPanicIsAnInternalError: a panic while a file runs is reported with its
// stack and exit status 4, and the next file still runs.
func TestPanicIsAnInternalError(t *testing.T) {
	var out, errOut bytes.Buffer
	o := &runOptions{streams: streams{out: &out, errOut: &errOut}, backends: map[string]sim.BackendFactory{
		"etcd": func(core.Clock) (sim.Backend, error) { panic("boom") },
	}}
	f := writeScenario(t, "cluster backend=etcd\n----\n")
	if got := o.runFile(context.Background(), f); got != exitInternal {
		t.Errorf("status %d, want %d", got, exitInternal)
	}
	if !strings.Contains(errOut.String(), "internal error: boom") || !strings.Contains(errOut.String(), "goroutine") {
		t.Errorf("stderr lacks the panic and its stack:\n%s", errOut.String())
	}
	if got := o.runFile(context.Background(), writeScenario(t, "cluster\n----\n")); got != exitOK {
		t.Errorf("the next file: status %d, want %d\n%s", got, exitOK, errOut.String())
	}
}
