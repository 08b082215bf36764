package sim

import (
	"fmt"
	"strconv"
	"strings"
)

// RunOptions configures RunScenario.
type RunOptions struct {
	// Verbose adds the agents' lines (tasks, presence expiry) to the output of
	// run and converge. Checking ignores them, so a verbose run still matches.
	Verbose bool
	// Backends are the registries `cluster backend=NAME` may name besides memory.
	Backends map[string]BackendFactory
	// Progress, if set, is called about once per wall second of a long run.
	Progress func(Progress)
}

// StepResult is one step as it ran.
type StepResult struct {
	Step
	Got string // the output, each line ending in a newline
	// Louder is set when the runner made the command verbose (RunOptions.Verbose).
	Louder bool
}

// Matches reports whether the output is the expected one, ignoring the lines
// that only a verbose run prints when the runner made the command verbose.
func (r StepResult) Matches() bool {
	if r.Louder {
		return quiet(r.Got) == quiet(r.Want)
	}
	return r.Got == r.Want
}

// ScenarioResult is what a scenario file's run left: the broken invariants and
// the trace hash of its (last) cluster.
type ScenarioResult struct {
	Violations []Violation
	TraceHash  string
	Mismatches int // steps whose output differed from the expected one
	// Report is the report of the (last) cluster, its Source left empty.
	Report Report
}

// RunScenario runs steps on a fresh script, handing each result to each as it
// completes. It stops at the first malformed command, with an error naming it.
func RunScenario(steps []Step, opts RunOptions, each func(StepResult)) (ScenarioResult, error) {
	s := NewScript(opts.Backends)
	defer s.Close()
	var res ScenarioResult
	for _, st := range steps {
		words, louder := st.Words, false
		if opts.Verbose && (words[0] == "run" || words[0] == "converge") && !hasWord(words, "verbose") {
			words, louder = append(append([]string(nil), words...), "verbose"), true
		}
		out, err := s.Exec(words, st.Input)
		if c := s.Cluster(); c != nil && opts.Progress != nil {
			c.OnProgress(opts.Progress)
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", st.Pos, err)
		}
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		r := StepResult{Step: st, Got: out, Louder: louder}
		if !r.Matches() {
			res.Mismatches++
		}
		each(r)
	}
	if c := s.Cluster(); c != nil {
		res.Violations = append([]Violation(nil), c.Violations()...)
		res.TraceHash = c.TraceHash()
		res.Report = ScenarioReport(c)
	}
	return res, nil
}

// ScenarioSeed is the seed of the scenario's first cluster command (0 if it
// names none).
func ScenarioSeed(steps []Step) (uint64, error) {
	for _, st := range steps {
		if len(st.Words) == 0 || st.Words[0] != "cluster" {
			continue
		}
		kv, _ := splitArgs(st.Words[1:])
		v, ok := kv["seed"]
		if !ok {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: seed %q: %w", st.Pos, v, err)
		}
		return n, nil
	}
	return 0, nil
}

// WithSeed returns steps with every cluster command's seed set to seed.
func WithSeed(steps []Step, seed uint64) []Step {
	out := make([]Step, len(steps))
	for i, st := range steps {
		out[i] = st
		if len(st.Words) == 0 || st.Words[0] != "cluster" {
			continue
		}
		words := []string{"cluster", "seed=" + strconv.FormatUint(seed, 10)}
		for _, w := range st.Words[1:] {
			if !strings.HasPrefix(w, "seed=") {
				words = append(words, w)
			}
		}
		out[i].Words = words
	}
	return out
}

// quiet drops the lines only a verbose run prints: the same rule as the
// script's trace filter.
func quiet(out string) string {
	if out == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		if l == "" || strings.Contains(l, " agent: ") || strings.Contains(l, " presence expired") {
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}
