package sim

import (
	"context"
	"errors"
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
	// Backend, if set, is the backend the cluster runs on, whatever its
	// cluster command names (one of Backends, or memory).
	Backend string
	// Context, if set, interrupts the run when it is done.
	Context context.Context
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

// ScenarioResult is what a scenario file's run left: the broken invariants, the
// unmet expectations and the trace hash of its cluster.
type ScenarioResult struct {
	Violations []Violation
	Unmet      []string // the expectations not met, one line each
	TraceHash  string
	Mismatches int // steps whose output differed from the expected one
	Steps      int // the steps that ran
	// Report is the report of the (last) cluster, its Source left empty.
	Report Report
}

// RunScenario runs steps on a fresh script, handing each result to each as it
// completes. It stops at the first malformed command, with an error naming it,
// or when opts.Context is done (an error wrapping ErrInterrupted, the step that
// was running handed to each with its output so far); the result then holds
// what ran until there.
func RunScenario(steps []Step, opts RunOptions, each func(StepResult)) (res ScenarioResult, err error) {
	s := NewScript(opts.Backends)
	s.backend = opts.Backend
	if opts.Context != nil {
		s.ctx = opts.Context
	}
	defer func() {
		if c := s.Cluster(); c != nil {
			res.Violations = append([]Violation(nil), c.Violations()...)
			res.TraceHash = c.TraceHash()
			res.Report = ScenarioReport(c)
		}
		res.Unmet = s.Unmet()
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close the cluster: %w", cerr)
		}
	}()
	for _, st := range steps {
		words, louder := st.Words, false
		if opts.Verbose && (words[0] == "run" || words[0] == "converge" || (words[0] == "expect" && len(words) > 1 && words[1] == "active")) && !hasWord(words, "verbose") {
			words, louder = append(append([]string(nil), words...), "verbose"), true
		}
		out, err := s.Exec(words, st.Input)
		if c := s.Cluster(); c != nil && opts.Progress != nil {
			c.OnProgress(opts.Progress)
		}
		if err != nil && !errors.Is(err, ErrInterrupted) {
			return res, fmt.Errorf("%s: %w", st.Pos, err)
		}
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		r := StepResult{Step: st, Got: out, Louder: louder}
		res.Steps++
		if err != nil {
			each(r)
			return res, fmt.Errorf("%s: %w", st.Pos, err)
		}
		if !r.Matches() {
			res.Mismatches++
		}
		each(r)
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
		n, err := parseSeed(v)
		if err != nil {
			return 0, fmt.Errorf("%s: cluster: %w", st.Pos, err)
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
