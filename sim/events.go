package sim

import (
	"container/heap"
	"time"
)

// eventKind names what an event does.
type eventKind int

const (
	evAgent   eventKind = iota + 1 // run a machine's agent pass
	evEngine                       // run a machine's engine pass
	evExpiry                       // a machine's presence may have expired
	evAction                       // a scheduled fault or user action
	evSystemd                      // a machine's systemd finishes a job
)

// event is one thing that happens at a virtual time. Events at the same time run
// in the order of a key drawn from the seeded RNG, so the seed decides the order
// of simultaneous events.
type event struct {
	at      time.Time
	key     uint64
	seq     uint64
	kind    eventKind
	machine *Machine
	gen     int // the machine's generation when scheduled; stale events are skipped
	name    string
	do      func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	if a.key != b.key {
		return a.key < b.key
	}
	return a.seq < b.seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// schedule queues e.
func (c *Cluster) schedule(e *event) {
	c.seq++
	e.seq = c.seq
	e.key = c.rng.Uint64()
	heap.Push(&c.queue, e)
}

// next pops the earliest event, or nil.
func (c *Cluster) next() *event {
	if c.queue.Len() == 0 {
		return nil
	}
	return heap.Pop(&c.queue).(*event)
}

// peekTime is the time of the earliest event.
func (c *Cluster) peekTime() (time.Time, bool) {
	if c.queue.Len() == 0 {
		return time.Time{}, false
	}
	return c.queue[0].at, true
}
