package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/fleet-rebuild/fleet/sim"
)

// reportFlags are the report options that run and gen share.
type reportFlags struct {
	output string // text or json
	html   string // file for the HTML page, if any
}

func (r *reportFlags) add(f *pflag.FlagSet) {
	f.StringVarP(&r.output, "output", "o", "text", "report format on stdout: text or json")
	f.StringVar(&r.html, "html", "", "also write the report as a self-contained HTML page with an SVG timeline to this `FILE`")
}

func (r *reportFlags) check() error {
	if r.output != "text" && r.output != "json" {
		return fmt.Errorf("--output %q: want text or json", r.output)
	}
	return nil
}

// writeHTML writes rep's HTML page to the --html file, if one was given.
func (r *reportFlags) writeHTML(rep sim.Report) error {
	if r.html == "" {
		return nil
	}
	return writeFile(r.html, "--html", rep.WriteHTML)
}

// writeFile creates file and writes it with write, naming flag in errors.
func writeFile(file, flag string, write func(io.Writer) error) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s %s: %w", flag, file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s %s: %w", flag, file, err)
	}
	return nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progressLine returns a function that shows a run's progress on w, rewriting
// one line, when w is a terminal (nil otherwise, so that captured output stays
// quiet), and a function that clears the line at the end.
func progressLine(w io.Writer) (func(sim.Progress), func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	shown := false
	show := func(p sim.Progress) {
		rate := 0.0
		if p.Wall > 0 {
			rate = float64(p.Events) / p.Wall.Seconds()
		}
		fmt.Fprintf(f, "\r\033[Kfleetsim: %s virtual reached, %.0f events/s", p.Virtual.Round(1e6), rate)
		shown = true
	}
	return show, func() {
		if shown {
			fmt.Fprint(f, "\r\033[K")
		}
	}
}

// genExtras are gen's options for reports, replay and shrinking.
type genExtras struct {
	reportFlags
	emit   string // --emit-scenario
	shrink string // --shrink
	budget int
	done   func()
}

func (e *genExtras) add(f *pflag.FlagSet) {
	e.reportFlags.add(f)
	f.StringVar(&e.emit, "emit-scenario", "", "write a scenario `FILE` that replays this run exactly (same trace sha256 under fleetsim run)")
	f.StringVar(&e.shrink, "shrink", "", "if the run fails, write to `FILE` a shortest scenario found that fails the same way")
	f.IntVar(&e.budget, "shrink-budget", 500, "at most this many runs when shrinking")
}

// prepare checks the options and sets up the progress line.
func (e *genExtras) prepare(s streams, cfg *sim.GenConfig) error {
	if err := e.check(); err != nil {
		return err
	}
	if e.budget < 1 {
		return fmt.Errorf("--shrink-budget %d: want at least 1", e.budget)
	}
	cfg.Progress, e.done = progressLine(s.errOut)
	return nil
}

// finish prints the report and writes the files asked for.
// etcd is the run's etcd backend, nil on memory.
func (e *genExtras) finish(s streams, rep sim.Report, etcd sim.BackendFactory) error {
	if e.done != nil {
		e.done()
	}
	if e.output == "json" {
		if err := writeJSON(s.out, rep.JSON()); err != nil {
			return err
		}
	} else {
		fmt.Fprint(s.out, rep.String())
	}
	if err := e.writeHTML(rep); err != nil {
		return err
	}
	if e.emit != "" {
		err := writeFile(e.emit, "--emit-scenario", func(w io.Writer) error {
			_, err := io.WriteString(w, rep.ReplayScenario())
			return err
		})
		if err != nil {
			return err
		}
	}
	if e.shrink == "" || (rep.OK() && rep.Stopped == "") {
		return nil
	}
	inv := firstBroken(rep)
	opts := sim.RunOptions{}
	if etcd != nil {
		opts.Backends = map[string]sim.BackendFactory{"etcd": etcd}
	}
	steps, calls := sim.Shrink(rep.ReplaySteps(), sim.BreaksInvariant(inv, opts), e.budget)
	header := fmt.Sprintf("# shrunk from fleetsim gen --seed %d (%d runs): still breaks invariant %s\n", rep.Seed, calls, inv)
	fmt.Fprintf(s.errOut, "fleetsim gen: shrunk to %d steps in %d runs: %s\n", len(steps), calls, e.shrink)
	return writeFile(e.shrink, "--shrink", func(w io.Writer) error {
		_, err := io.WriteString(w, header+sim.FormatScenario(steps))
		return err
	})
}

// firstBroken names the first invariant the report shows broken.
func firstBroken(rep sim.Report) string {
	for _, inv := range rep.Invariants {
		if !inv.Held {
			return inv.Invariant
		}
	}
	return ""
}

// runExtras are run's options for reports.
type runExtras struct {
	reportFlags
	files    []runFileJSON
	out      io.Writer // stdout, when --output json keeps the transcript off it
	progress func(sim.Progress)
	done     func()
}

// runFileJSON is one scenario file in `fleetsim run --output json`.
type runFileJSON struct {
	File  string `json:"file"`
	Steps int    `json:"steps"`
	// OutputsDiffer counts the steps whose output differed (with --check).
	OutputsDiffer *int           `json:"outputs_differ,omitempty"`
	Report        sim.JSONReport `json:"report"`
}

// runJSON is what `fleetsim run --output json` prints.
type runJSON struct {
	Files []runFileJSON `json:"files"`
}

// begin checks the options and returns the streams the run writes its
// transcript to: none with --output json.
func (e *runExtras) begin(s streams, files int) (streams, error) {
	if err := e.check(); err != nil {
		return s, err
	}
	if e.html != "" && files != 1 {
		return s, errors.New("--html: give one scenario file")
	}
	e.progress, e.done = progressLine(s.errOut)
	e.out = s.out
	if e.output == "json" {
		s.out = io.Discard
	}
	return s, nil
}

// file reports one scenario file's run: as comments after its transcript on
// out, as JSON, and as an HTML page.
func (e *runExtras) file(out io.Writer, file string, steps int, check bool, res sim.ScenarioResult) error {
	if e.done != nil {
		e.done()
	}
	rep := res.Report
	rep.Source = file
	if e.output == "json" {
		f := runFileJSON{File: file, Steps: steps, Report: rep.JSON()}
		if check {
			f.OutputsDiffer = &res.Mismatches
		}
		e.files = append(e.files, f)
	} else {
		text := strings.TrimSuffix(rep.String(), "\n")
		fmt.Fprintf(out, "# %s\n", strings.ReplaceAll(text, "\n", "\n# "))
	}
	return e.writeHTML(rep)
}

// end prints the JSON of every file.
func (e *runExtras) end() error {
	if e.output != "json" {
		return nil
	}
	return writeJSON(e.out, runJSON{Files: e.files})
}
