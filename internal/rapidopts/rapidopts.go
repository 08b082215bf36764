// Package rapidopts sets per-test defaults for pgregory.net/rapid's knobs
// (-rapid.checks, -rapid.steps, -rapid.seed) that give way to the user's own
// choice by flag or by RAPID_CHECKS, RAPID_STEPS, RAPID_SEED.
package rapidopts

import (
	"flag"
	"os"
	"strings"
	"sync"
	"testing"

	_ "pgregory.net/rapid" // registers the flags set here
)

// Seed is the default seed: a default run is deterministic.
const Seed = "20260101"

// userChose records which knobs the user set, read once before any default
// changes the flags.
var userChose = sync.OnceValue(func() map[string]bool {
	chose := map[string]bool{}
	for _, env := range []string{"RAPID_CHECKS", "RAPID_STEPS", "RAPID_SEED"} {
		if _, ok := os.LookupEnv(env); ok {
			chose["rapid."+strings.ToLower(strings.TrimPrefix(env, "RAPID_"))] = true
		}
	}
	flag.Visit(func(f *flag.Flag) { chose[f.Name] = true })
	return chose
})

// Defaults sets rapid's flags (by name, e.g. "rapid.checks") to values for the
// duration of test t, except those the user chose.
func Defaults(t *testing.T, values map[string]string) {
	t.Helper()
	for name, value := range values {
		if userChose()[name] {
			continue
		}
		f := flag.Lookup(name)
		if f == nil {
			t.Fatalf("rapid registers no -%s flag", name)
		}
		old := f.Value.String()
		if err := f.Value.Set(value); err != nil {
			t.Fatalf("set -%s: %v", name, err)
		}
		t.Cleanup(func() { f.Value.Set(old) })
	}
}
