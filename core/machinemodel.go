package core

import (
	"container/heap"
	"sort"
)

// machineModel is the scheduler's view of one live machine: the units that run
// there (placed non-global units and eligible global units).
type machineModel struct {
	state       MachineState
	placed      map[string]*SchedUnit // non-global units placed here
	globals     map[string]*SchedUnit // global units that run here
	conflictors map[string]*SchedUnit // units here with Conflicts globs
	replacers   map[string]*SchedUnit // units here with Replaces globs
	heapIndex   int
}

func newMachineModel(m MachineState) *machineModel {
	return &machineModel{
		state:       m,
		placed:      map[string]*SchedUnit{},
		globals:     map[string]*SchedUnit{},
		conflictors: map[string]*SchedUnit{},
		replacers:   map[string]*SchedUnit{},
	}
}

// load is the number of units that run on the machine.
func (m *machineModel) load() int { return len(m.placed) + len(m.globals) }

func (m *machineModel) has(name string) bool {
	_, p := m.placed[name]
	_, g := m.globals[name]
	return p || g
}

func (m *machineModel) index(u *SchedUnit) {
	if len(u.Req.Conflicts) > 0 {
		m.conflictors[u.Name] = u
	}
	if len(u.Req.Replaces) > 0 {
		m.replacers[u.Name] = u
	}
}

func (m *machineModel) unindex(name string) {
	delete(m.conflictors, name)
	delete(m.replacers, name)
}

func (m *machineModel) add(u *SchedUnit) {
	m.placed[u.Name] = u
	m.index(u)
}

func (m *machineModel) remove(name string) {
	delete(m.placed, name)
	m.unindex(name)
}

// sortedPlaced returns the units placed here, by name.
func (m *machineModel) sortedPlaced() []*SchedUnit {
	out := make([]*SchedUnit, 0, len(m.placed))
	for _, u := range m.placed {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *machineModel) addGlobal(u *SchedUnit) {
	m.globals[u.Name] = u
	m.index(u)
}

// less orders machines by load, then by ID: the least-loaded rule.
func (m *machineModel) less(o *machineModel) bool {
	if m.load() != o.load() {
		return m.load() < o.load()
	}
	return m.state.ID < o.state.ID
}

// loadHeap is a min-heap of machines by (load, ID).
type loadHeap []*machineModel

func (h loadHeap) Len() int           { return len(h) }
func (h loadHeap) Less(i, j int) bool { return h[i].less(h[j]) }
func (h loadHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}
func (h *loadHeap) Push(x any) {
	m := x.(*machineModel)
	m.heapIndex = len(*h)
	*h = append(*h, m)
}
func (h *loadHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	*h = old[:len(old)-1]
	m.heapIndex = -1
	return m
}

// fix restores the heap after m's load changed.
func (h *loadHeap) fix(m *machineModel) {
	if m.heapIndex >= 0 {
		heap.Fix(h, m.heapIndex)
	}
}
