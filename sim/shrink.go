package sim

// fixedCommands are the scenario commands Shrink keeps: the cluster, its
// machines, the passing of time and the views. It removes the others (units,
// faults) to find a shorter scenario that still fails.
var fixedCommands = map[string]bool{
	"cluster": true, "add-machine": true, "run": true, "converge": true, "heal": true,
	"check": true, "list-units": true, "list-machines": true, "load-spread": true,
}

// Shrink reduces a failing scenario to a shorter one that still fails, by delta
// debugging (ddmin) over its removable steps: each unit's submit with the start
// of the same unit that follows it, each fault, each other command that is not
// the cluster, a machine, a run, a convergence, heal or a view. fails says
// whether steps still fail; Shrink calls it at most budget times and returns
// the smallest failing steps found, their expected outputs cleared, and the
// number of calls made. steps themselves are assumed to fail.
func Shrink(steps []Step, fails func([]Step) bool, budget int) ([]Step, int) {
	var groups [][]int // removable steps, in groups that go together
	fixed := make([]bool, len(steps))
	for i := 0; i < len(steps); i++ {
		st := steps[i]
		if len(st.Words) == 0 || fixedCommands[st.Words[0]] {
			fixed[i] = true
			continue
		}
		g := []int{i}
		if st.Words[0] == "submit" && len(st.Words) == 2 && i+1 < len(steps) {
			if next := steps[i+1].Words; len(next) == 2 && next[0] == "start" && next[1] == st.Words[1] {
				g = append(g, i+1)
				i++
			}
		}
		groups = append(groups, g)
	}
	calls := 0
	build := func(keep []int) []Step {
		in := make([]bool, len(steps))
		for _, gi := range keep {
			for _, i := range groups[gi] {
				in[i] = true
			}
		}
		var out []Step
		for i, st := range steps {
			if fixed[i] || in[i] {
				st.Want = ""
				out = append(out, st)
			}
		}
		return out
	}
	test := func(keep []int) bool {
		if calls >= budget {
			return false
		}
		calls++
		return fails(build(keep))
	}
	keep := make([]int, len(groups))
	for i := range keep {
		keep[i] = i
	}
	keep = ddmin(keep, test)
	return build(keep), calls
}

// ddmin is Zeller's minimizing delta debugging: it returns a subset of items
// that still fails, such that removing any one of its chunks no longer does.
func ddmin(items []int, fails func([]int) bool) []int {
	if len(items) > 0 && fails(nil) {
		return nil
	}
	n := 2
	for len(items) >= 2 {
		chunks := split(items, n)
		reduced := false
		for _, c := range chunks {
			if fails(c) {
				items, n, reduced = c, 2, true
				break
			}
		}
		if !reduced && n > 2 {
			for i := range chunks {
				rest := without(chunks, i)
				if fails(rest) {
					items, n, reduced = rest, max(n-1, 2), true
					break
				}
			}
		}
		if !reduced {
			if n >= len(items) {
				break
			}
			n = min(2*n, len(items))
		}
	}
	return items
}

// split cuts items into n chunks of nearly equal sizes.
func split(items []int, n int) [][]int {
	out := make([][]int, 0, n)
	for i := range n {
		lo, hi := i*len(items)/n, (i+1)*len(items)/n
		if lo < hi {
			out = append(out, items[lo:hi])
		}
	}
	return out
}

// without joins every chunk but the i-th.
func without(chunks [][]int, i int) []int {
	var out []int
	for j, c := range chunks {
		if j != i {
			out = append(out, c...)
		}
	}
	return out
}

// BreaksInvariant is a predicate for Shrink: the scenario runs without a
// malformed command and breaks the invariant inv (any, if inv is empty).
func BreaksInvariant(inv string, opts RunOptions) func([]Step) bool {
	return func(steps []Step) bool {
		res, err := RunScenario(steps, opts, func(StepResult) {})
		if err != nil {
			return false
		}
		for _, v := range res.Violations {
			if inv == "" || v.Invariant == inv {
				return true
			}
		}
		return false
	}
}
