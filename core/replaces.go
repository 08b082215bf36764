package core

import (
	"sort"
	"strings"
)

// ReplaceGraph is the Replaces relation among a set of units: a replaces b when
// one of a's Replaces globs matches b's name. Relations that form a cycle (a
// replaces b, b replaces c, c replaces a) are ignored, as fleet ignores two units
// that replace each other: no order among them is stable, and honouring them
// would move a unit on every pass.
type ReplaceGraph struct {
	edges map[string][]string // replacer -> victims, sorted
}

// NewReplaceGraph builds the relation among units. A literal name costs a
// lookup; a glob with wildcards is matched against every unit.
func NewReplaceGraph(units []*SchedUnit) *ReplaceGraph {
	g := &ReplaceGraph{edges: map[string][]string{}}
	names := make(map[string]bool, len(units))
	for _, u := range units {
		names[u.Name] = true
	}
	for _, a := range units {
		victims := map[string]bool{}
		for _, glob := range a.Req.Replaces {
			if !strings.ContainsAny(glob, `*?[\`) {
				if names[glob] && glob != a.Name {
					victims[glob] = true
				}
				continue
			}
			for _, b := range units {
				if b.Name != a.Name && globMatch(glob, b.Name) {
					victims[b.Name] = true
				}
			}
		}
		for v := range victims {
			g.edges[a.Name] = append(g.edges[a.Name], v)
		}
		sort.Strings(g.edges[a.Name])
	}
	g.dropCycles()
	return g
}

// Replaces reports whether a displaces b from a machine they would share.
func (g *ReplaceGraph) Replaces(a, b string) bool {
	vs := g.edges[a]
	i := sort.SearchStrings(vs, b)
	return i < len(vs) && vs[i] == b
}

// dropCycles removes every edge inside a strongly connected component
// (Tarjan's algorithm, iterative over the sorted replacers).
func (g *ReplaceGraph) dropCycles() {
	index, low, comp := map[string]int{}, map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	next, ncomp := 0, 0
	var visit func(v string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range g.edges[v] {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp[w] = ncomp
				if w == v {
					break
				}
			}
			ncomp++
		}
	}
	replacers := make([]string, 0, len(g.edges))
	for v := range g.edges {
		replacers = append(replacers, v)
	}
	sort.Strings(replacers)
	for _, v := range replacers {
		if _, seen := index[v]; !seen {
			visit(v)
		}
	}
	for v, ws := range g.edges {
		kept := ws[:0]
		for _, w := range ws {
			if comp[w] != comp[v] {
				kept = append(kept, w)
			}
		}
		if len(kept) == 0 {
			delete(g.edges, v)
		} else {
			g.edges[v] = kept
		}
	}
}
