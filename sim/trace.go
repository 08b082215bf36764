package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"time"
)

// tracer records what happened, one line per fact, and hashes every line so two
// runs can be compared byte for byte without keeping the lines.
type tracer struct {
	keep  bool
	lines []string
	h     hash.Hash
	out   io.Writer
	n     int
	rec   *recorder
}

func (c *Cluster) tracef(actor, format string, args ...any) {
	t := &c.trace
	if t.h == nil {
		t.h = sha256.New()
	}
	if t.rec == nil {
		t.rec = newRecorder(c.cfg.AgentTTL, c.cfg.JobDuration)
	}
	msg := fmt.Sprintf(format, args...)
	t.rec.line(c.Elapsed(), actor, msg)
	line := fmt.Sprintf("[%10.3fs] %-6s %s", c.Elapsed().Seconds(), actor, msg)
	t.h.Write([]byte(line))
	t.h.Write([]byte{'\n'})
	t.n++
	if t.keep {
		t.lines = append(t.lines, line)
	}
	if t.out != nil {
		fmt.Fprintln(t.out, line)
	}
}

// Trace returns the kept trace lines (Config.KeepTrace).
func (c *Cluster) Trace() []string { return c.trace.lines }

// TraceHash is the SHA-256 of the whole trace so far.
func (c *Cluster) TraceHash() string {
	if c.trace.h == nil {
		return ""
	}
	return hex.EncodeToString(c.trace.h.Sum(nil))
}

// TraceTo also writes every trace line to w as it happens.
func (c *Cluster) TraceTo(w io.Writer) { c.trace.out = w }

// Timeline is what the trace so far shows of each machine, unit, fault and
// failover.
func (c *Cluster) Timeline() Timeline {
	if c.trace.rec == nil {
		return Timeline{End: c.Elapsed()}
	}
	return c.trace.rec.timeline(c.Elapsed())
}

// TraceLen is the number of trace lines so far.
func (c *Cluster) TraceLen() int { return c.trace.n }

// stats counts the work the simulation did.
type stats struct {
	events, agentPasses, enginePasses, tasks, registryCalls, decisions int
}

// Failover is one unit moved off a machine that went away.
type Failover struct {
	Unit, From, To string
	// Latency is from the presence expiring to the new placement.
	Latency time.Duration
}
