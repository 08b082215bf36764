package memory

import (
	"iter"
	"slices"
)

// sortedList is a listing kept sorted by key across writes. Writers report each
// changed key; a read merges the changed keys into the last listing, in
// O(n + k log k) for k changes, instead of sorting all n entries again. When the
// changes pile up past a quarter of the listing, it is dropped and the next read
// rebuilds it from scratch, so writes stay O(1) while nobody reads.
type sortedList[K comparable, V any] struct {
	list    []V  // sorted by key; owned by the list, callers get copies
	valid   bool // list reflects the store, apart from pending
	pending []K  // keys changed since list was last brought up to date

	key     func(V) K
	compare func(a, b K) int
	all     func() iter.Seq[V] // every entry of the store, in any order
	lookup  func(K) (V, bool)  // the store's entry for a key, if any
}

// changed records that the entry of k was created, updated or deleted.
func (s *sortedList[K, V]) changed(k K) {
	if !s.valid {
		return
	}
	s.pending = append(s.pending, k)
	if len(s.pending) > len(s.list)/4+64 {
		s.valid, s.list, s.pending = false, nil, nil
	}
}

// get returns the up-to-date listing, which the caller must not modify.
func (s *sortedList[K, V]) get() []V {
	switch {
	case !s.valid:
		s.rebuild()
	case len(s.pending) > 0:
		s.merge()
	}
	return s.list
}

func (s *sortedList[K, V]) rebuild() {
	list := []V{}
	for v := range s.all() {
		list = append(list, v)
	}
	slices.SortFunc(list, func(a, b V) int { return s.compare(s.key(a), s.key(b)) })
	s.list, s.valid, s.pending = list, true, nil
}

// merge copies the listing, replacing the entry of each pending key by the
// store's current one (or dropping it).
func (s *sortedList[K, V]) merge() {
	slices.SortFunc(s.pending, s.compare)
	keys := slices.Compact(s.pending)
	out := make([]V, 0, len(s.list)+len(keys))
	rest := s.list
	for _, k := range keys {
		i, found := slices.BinarySearchFunc(rest, k, func(v V, k K) int { return s.compare(s.key(v), k) })
		out = append(out, rest[:i]...)
		if found {
			i++
		}
		rest = rest[i:]
		if v, ok := s.lookup(k); ok {
			out = append(out, v)
		}
	}
	s.list = append(out, rest...)
	s.pending = s.pending[:0]
}
