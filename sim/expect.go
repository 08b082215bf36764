package sim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// expectStep is how often `expect active ... by=D` looks at the units while it
// runs the simulation.
const expectStep = 100 * time.Millisecond

// maxRestarts bounds the max= of `expect restarts`.
const maxRestarts = 1_000_000

// expectSpec is what each kind of expectation accepts.
func expectSpec(args []string) (commandSpec, error) {
	if len(args) == 0 {
		return commandSpec{}, errors.New("missing kind: want active, on, not-on, follows or restarts")
	}
	switch args[0] {
	case "active":
		return commandSpec{max: -1, flags: []string{"verbose"}, keys: []string{"by"}}, nil
	case "on", "not-on", "follows":
		return commandSpec{min: 2, max: 2}, nil
	case "restarts":
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "max=") }) {
			return commandSpec{}, errors.New("restarts: missing max=N")
		}
		return commandSpec{min: 1, max: 1, keys: []string{"max"}}, nil
	}
	return commandSpec{}, fmt.Errorf("unknown kind %q: want active, on, not-on, follows or restarts", args[0])
}

// expect checks an expectation. A met one prints nothing; an unmet one prints
// "expectation not met: ..." and is remembered (Unmet).
func (s *Script) expect(kind string, args []string) (string, error) {
	kv, pos := splitArgs(args)
	pos = slices.DeleteFunc(pos, func(w string) bool { return w == "verbose" })
	for i, n := range pos {
		if kind == "on" || kind == "not-on" {
			if i == 1 {
				if s.c.byID[n] == nil {
					return "", fmt.Errorf("%s: no machine %q", kind, n)
				}
				continue
			}
		}
		if s.c.units[n] == nil {
			return "", fmt.Errorf("%s: no unit %q was submitted", kind, n)
		}
	}
	var why string
	var err error
	switch kind {
	case "active":
		why, err = s.expectActive(pos, kv["by"])
	case "on", "not-on":
		var where []string
		if where, err = s.placedOn(pos[0]); err == nil {
			on := slices.Contains(where, pos[1])
			switch {
			case kind == "on" && !on:
				why = fmt.Sprintf("%s is on %s, not on %s", pos[0], machinesText(where), pos[1])
			case kind == "not-on" && on:
				why = fmt.Sprintf("%s is on %s", pos[0], pos[1])
			}
		}
	case "follows":
		why, err = s.expectFollows(pos[0], pos[1])
	case "restarts":
		why, err = s.expectRestarts(pos[0], kv["max"])
	}
	if err != nil {
		return "", err
	}
	if why == "" {
		return "", nil
	}
	line := "expectation not met: " + why
	s.unmet = append(s.unmet, line)
	return line + "\n", nil
}

// expectActive checks that the units (by default every launched unit) are
// active. With by=D it runs the simulation until they are, or until the virtual
// time D (since the start); an interruption or a broken invariant ends it.
func (s *Script) expectActive(names []string, by string) (string, error) {
	c := s.c
	if len(names) == 0 {
		for n, r := range c.units {
			if r.TargetState == core.Launched {
				names = append(names, n)
			}
		}
		slices.Sort(names)
	}
	if by == "" {
		return s.inactive(names)
	}
	deadline, err := parseDuration("by", by, 0, MaxScenarioStep)
	if err != nil {
		return "", err
	}
	if now := c.Elapsed(); deadline < now {
		return "", fmt.Errorf("by=%s is already past: the clock is at %s", by, now)
	}
	for {
		why, err := s.inactive(names)
		if err != nil || why == "" {
			return why, err
		}
		if c.Elapsed() >= deadline {
			return fmt.Sprintf("%s by %s", why, deadline), nil
		}
		next := min(c.Elapsed()+expectStep, deadline)
		if err := c.RunUntil(Epoch.Add(next), nil); err != nil {
			if errors.Is(err, ErrInterrupted) {
				return "", err
			}
			return fmt.Sprintf("%s by %s: the run stopped: %v", why, deadline, err), nil
		}
	}
}

// inactive names the first unit that is not active: a unit is active when it
// is placed on a machine that is up and published it active (a global unit:
// at least one machine published it, each one up and publishing it active).
func (s *Script) inactive(names []string) (string, error) {
	reg := s.c.backend.Registry
	placements, err := reg.Placements(s.c.ctx)
	if err != nil {
		return "", fmt.Errorf("read placements: %w", err)
	}
	states, err := reg.UnitStates(s.c.ctx)
	if err != nil {
		return "", fmt.Errorf("read unit states: %w", err)
	}
	published := map[[2]string]core.UnitState{}
	for _, st := range states {
		published[[2]string{st.Unit, st.Machine}] = st
	}
	on := map[string][]string{}
	for _, p := range placements {
		on[p.Unit] = append(on[p.Unit], p.Machine)
	}
	for _, st := range states {
		if r := s.c.units[st.Unit]; r != nil && r.Global {
			on[st.Unit] = append(on[st.Unit], st.Machine)
		}
	}
	for _, n := range names {
		if len(on[n]) == 0 {
			return n + " is not active: it runs nowhere", nil
		}
		for _, m := range on[n] {
			if mm := s.c.byID[m]; mm == nil || !mm.Up() {
				return fmt.Sprintf("%s is not active: its machine %s is down", n, m), nil
			}
			st, ok := published[[2]string{n, m}]
			if !ok {
				return fmt.Sprintf("%s is not active: %s published no state", n, m), nil
			}
			if st.ActiveState != "active" {
				return fmt.Sprintf("%s is not active: %s on %s", n, showState(st), m), nil
			}
		}
	}
	return "", nil
}

// placedOn returns the machines the unit is placed on, sorted.
func (s *Script) placedOn(name string) ([]string, error) {
	placements, err := s.c.backend.Registry.Placements(s.c.ctx)
	if err != nil {
		return nil, fmt.Errorf("read placements: %w", err)
	}
	var out []string
	for _, p := range placements {
		if p.Unit == name {
			out = append(out, p.Machine)
		}
	}
	slices.Sort(out)
	return out, nil
}

func machinesText(ms []string) string {
	if len(ms) == 0 {
		return "no machine"
	}
	return strings.Join(ms, ", ")
}

// expectFollows checks that name is placed on a machine its peer is placed on.
func (s *Script) expectFollows(name, peer string) (string, error) {
	a, err := s.placedOn(name)
	if err != nil {
		return "", err
	}
	b, err := s.placedOn(peer)
	if err != nil {
		return "", err
	}
	for _, m := range a {
		if slices.Contains(b, m) {
			return "", nil
		}
	}
	return fmt.Sprintf("%s is on %s, %s on %s", name, machinesText(a), peer, machinesText(b)), nil
}

// expectRestarts checks that fleet's agents started the unit at most max times
// after its first start, on any machine (systemd's own Restart= not counted).
func (s *Script) expectRestarts(name, maxText string) (string, error) {
	limit, err := strconv.Atoi(maxText)
	if err != nil || limit < 0 || limit > maxRestarts {
		return "", fmt.Errorf("restarts: max=%s: want a whole number from 0 to %d", maxText, maxRestarts)
	}
	starts := 0
	needle := " agent: start " + name + " ("
	for _, l := range s.c.Trace() {
		if strings.Contains(l, needle) {
			starts++
		}
	}
	if restarts := max(starts-1, 0); restarts > limit {
		return fmt.Sprintf("%s restarted %d times, want at most %d", name, restarts, limit), nil
	}
	return "", nil
}
