package sim

import (
	"strings"
	"testing"
	"time"
)

// Bounds of FuzzScenario, so that one input runs in milliseconds of real time:
// a tiny cluster, few steps and short simulated durations.
const (
	fuzzMaxText     = 4 << 10
	fuzzMaxSteps    = 24
	fuzzMaxMachines = 5
	fuzzMaxDuration = 2 * time.Minute
)

// FuzzScenario parses arbitrary scenario files and executes their commands
// on a tiny simulated cluster: parsing never panics and its errors name the
// file and line; executing never panics. Steps beyond the fuzz bounds (too
// many machines, a simulated duration too long, a cluster option out of
// range) are skipped, not run.
func FuzzScenario(f *testing.F) {
	for _, s := range []string{
		"cluster seed=1\n----\n\nadd-machine m1 engine region=us\n----\n\nadd-machine m2\n----\n\nstart web.service\n----\n\nrun 5s\n----\n\nlist-units\n----\n\ncheck\n----\n",
		"submit db@.service\n[Service]\nExecStart=/bin/db %i\n[X-Fleet]\nConflicts=db@*\n----\n\nstart db@1.service db@2.service\n----\n\nconverge max=1m\n----\n",
		"add-machine m1 engine\n----\n\nstart a.service\n----\n\ncrash m1\n----\n\nrun 40s verbose\n----\n\nreturn m1\n----\n\nconverge\n----\n----\nblock\n\noutput\n----\n----\n",
		"add-machine m1 engine\n----\n\npartition m1\n----\n\nregistry-down\n----\n\nrun 1s\n----\n\nregistry-up\n----\n\nreconnect m1\n----\n\nheal\n----\n",
		"add-machine m1 engine\n----\n\nregistry-faults lose-reply=0.5 slow-call=0.1\n----\n\nstart x.service\n----\n\nstall-engine m1 3s\n----\n\nrun 10s\n----\n",
		"add-machine m1\n----\n\nsubmit bad.service\nnot a unit\n----\n\nload-spread\n----\n\nfail-starts m1\n----\n\nsystemctl-stop m1 bad.service\n----\n",
		"cluster seed=7 ttl=5s skew=1s job=10ms\n----\n\nadd-machine a engine\n----\n\nstart u.service\n----\n\nrestart-fleetd a\n----\n\nrun 1m\n----\n",
		"cmd \\\n  continued\n----\n",
		"no separator\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > fuzzMaxText {
			t.Skip("longer than the fuzz bound")
		}
		steps, err := ParseScenario("fuzz.txt", text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.txt:") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			return
		}
		s := NewScript(nil)
		defer s.Close()
		if _, err := s.Exec([]string{"cluster", "seed=1"}, ""); err != nil {
			t.Fatalf("cluster: %v", err)
		}
		machines := 0
		for i, st := range steps {
			if i == fuzzMaxSteps {
				break
			}
			if !withinFuzzBounds(st.Words, &machines) {
				continue
			}
			_, _ = s.Exec(st.Words, st.Input)
		}
	})
}

// withinFuzzBounds reports whether a command stays within the fuzz bounds,
// counting the machines it adds (a new cluster starts the count again).
func withinFuzzBounds(words []string, machines *int) bool {
	switch words[0] {
	case "add-machine":
		if *machines == fuzzMaxMachines {
			return false
		}
		*machines++
	case "cluster":
		*machines = 0
	case "registry-faults", "submit":
		return true
	}
	for _, w := range words[1:] {
		k, v, isKV := strings.Cut(w, "=")
		if !isKV {
			v = w
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			continue
		}
		if d > fuzzMaxDuration || d < -fuzzMaxDuration {
			return false
		}
		if words[0] == "cluster" && (k == "ttl" && d < time.Second || k == "job" && d < time.Millisecond || d < 0) {
			return false
		}
	}
	return true
}
