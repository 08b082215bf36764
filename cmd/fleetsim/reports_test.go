package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/sim"
)

var traceHash = regexp.MustCompile(`trace sha256 ([0-9a-f]{64})`)

func TestGenJSONReport(t *testing.T) {
	code, out, errOut := fleetsim(t, "gen", "--machines", "6", "--units", "30", "--faults", "heavy", "--duration", "2m", "--seed", "3", "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var rep sim.JSONReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Seed != 3 || rep.Source != "gen" || rep.Result != "ok" || rep.Config == nil || rep.Config.Machines != 6 || rep.Convergence == nil {
		t.Errorf("header: %+v", rep)
	}
	if len(rep.Machines) == 0 || len(rep.Invariants) != 7 || len(rep.Faults) == 0 || len(rep.TraceSHA256) != 64 {
		t.Errorf("machines %v, invariants %v, faults %v, trace %q", rep.Machines, rep.Invariants, rep.Faults, rep.TraceSHA256)
	}
	if rep.Failovers.Count != len(rep.Failovers.Units) || rep.Failovers.Count == 0 {
		t.Errorf("failovers %+v", rep.Failovers)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("a progress line in captured output: %q", errOut)
	}
}

// TestEmitScenarioReplaysTheRun checks, for a few seeds with faults, that the
// emitted scenario run by fleetsim run gives the gen run's trace hash.
func TestEmitScenarioReplaysTheRun(t *testing.T) {
	dir := t.TempDir()
	for _, seed := range []string{"1", "2", "7"} {
		file := filepath.Join(dir, "replay-"+seed+".txt")
		code, out, errOut := fleetsim(t, "gen", "--machines", "5", "--units", "25", "--faults", "heavy", "--duration", "90s", "--seed", seed, "--emit-scenario", file)
		if code != exitOK {
			t.Fatalf("seed %s: exit %d\n%s", seed, code, errOut)
		}
		want := regexp.MustCompile(`trace: sha256 ([0-9a-f]{64})`).FindStringSubmatch(out)
		code, out, errOut = fleetsim(t, "run", file)
		if code != exitOK {
			t.Fatalf("seed %s: replay exit %d\n%s", seed, code, errOut)
		}
		got := traceHash.FindStringSubmatch(out)
		if want == nil || got == nil || got[1] != want[1] {
			t.Errorf("seed %s: replay trace %v, gen trace %v", seed, got, want)
		}
	}
}

func TestRunJSONAndHTML(t *testing.T) {
	f := writeScenario(t, "cluster seed=4\n----\n\nadd-machine m1 engine\n----\n\nadd-machine m2\n----\n\nrun 1s\n----\n\nsubmit a.service b.service\n----\n\nstart a.service b.service\n----\n\nconverge\n----\n\ncrash m2\n----\n\nrun 40s\n----\n")
	page := filepath.Join(t.TempDir(), "run.html")
	code, out, errOut := fleetsim(t, "run", "--check", "--output", "json", "--html", page, f)
	if code != exitExpectation {
		t.Fatalf("exit %d, want %d (outputs differ)\n%s", code, exitExpectation, errOut)
	}
	var got runJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Files) != 1 || got.Files[0].OutputsDiffer == nil || *got.Files[0].OutputsDiffer == 0 || got.Files[0].Report.Failovers.Count != 1 {
		t.Errorf("json %+v", got)
	}
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(string(data)))
	lanes := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("page not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			lanes++
		}
	}
	if lanes != 2 {
		t.Errorf("%d machine lanes, want 2", lanes)
	}
	code, out, _ = fleetsim(t, "run", f)
	if code != exitOK || !strings.Contains(out, "\n# failovers: 1, 1 of them active on their new machine\n") || !strings.Contains(out, "\n# result: ok\n") {
		t.Errorf("exit %d, text report:\n%s", code, out)
	}
	if code, _, _ := fleetsim(t, "run", "--html", page, f, f); code != exitUsage {
		t.Errorf("--html with two files: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := fleetsim(t, "run", "--output", "yaml", f); code != exitUsage {
		t.Errorf("--output yaml: exit %d, want %d", code, exitUsage)
	}
}

func TestShrinkCommand(t *testing.T) {
	var b strings.Builder
	b.WriteString("cluster seed=1\n----\n\nadd-machine m1 engine\n----\n\nadd-machine m2\n----\n\nrun 1s\n----\n\n")
	for _, u := range []string{"a", "b", "c", "d", "e", "f"} {
		b.WriteString("submit " + u + ".service\n----\n\nstart " + u + ".service\n----\n\n")
	}
	b.WriteString("crash-unit m2 a.service\n----\n\nconverge max=50ms\n----\n\ncheck\n----\n")
	f := writeScenario(t, b.String())
	small := filepath.Join(t.TempDir(), "small.txt")
	code, _, errOut := fleetsim(t, "shrink", f, "-o", small)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	data, err := os.ReadFile(small)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\nstart "); n != 1 || strings.Contains(string(data), "crash-unit") {
		t.Errorf("shrunk scenario keeps %d starts:\n%s", n, data)
	}
	if code, _, _ := fleetsim(t, "run", small); code != exitInvariant {
		t.Errorf("the shrunk scenario does not fail: exit %d\n%s", code, data)
	}
	ok := writeScenario(t, "cluster seed=1\n----\n\nadd-machine m1 engine\n----\n")
	if code, _, _ := fleetsim(t, "shrink", ok); code != exitUsage {
		t.Errorf("shrink of a passing scenario: exit %d, want %d", code, exitUsage)
	}
}

// TestGenShrink shrinks a failing generated run, made to fail by asking for
// convergence sooner than a systemd job can finish.
func TestGenShrink(t *testing.T) {
	rep, err := sim.Generate(sim.GenConfig{Machines: 3, Units: 12, Seed: 2, ConvergeMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "small.txt")
	e := genExtras{reportFlags: reportFlags{output: "text"}, shrink: file, budget: 300}
	var out, errOut strings.Builder
	if err := e.finish(streams{out: &out, errOut: &errOut}, rep, nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "still breaks invariant convergence") || strings.Count(string(data), "\nstart ") != 1 {
		t.Errorf("shrunk scenario:\n%s", data)
	}
}

func TestProgressQuietOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	show, done := progressLine(f)
	done()
	if show != nil {
		t.Error("a progress line on a file that is not a terminal")
	}
}
