package sim

import (
	"errors"
	"fmt"

	"github.com/fleet-rebuild/fleet/core"
)

// Submit stores a unit (desired state inactive), as `fleetctl submit` does.
func (c *Cluster) Submit(name string, contents []byte) error {
	s, err := core.PrepareUnit(name, contents)
	if err != nil {
		return fmt.Errorf("sim: submit: %w", err)
	}
	create := func() error { return c.client.CreateUnit(c.ctx, s.Unit, s.File.Bytes()) }
	applied := func() bool {
		u, err := c.backend.Registry.Unit(c.ctx, name)
		return err == nil && u.Hash == s.Unit.Hash && c.units[name] == nil
	}
	if err := c.clientWrite(create, applied); err != nil {
		return fmt.Errorf("sim: submit %s: %w", name, err)
	}
	c.replacing = nil
	c.units[name] = c.checkerRecord(s, contents)
	c.tracef("client", "submit %s (%s)", name, s.Unit.Hash.Short())
	c.userChange()
	return nil
}

// checkerRecord is what the checker remembers of submitted unit s: its
// requirements as the checker reads them from contents (readXFleet), not as
// core does. Where the two readings differ, an invariant is broken.
func (c *Cluster) checkerRecord(s core.Submission, contents []byte) *SchedUnitRecord {
	name := s.Unit.Name
	mine, err := readXFleet(name, contents)
	if err != nil {
		c.violate(InvReading, "%s: core accepted it, but the checker cannot read it: %v", name, err)
	}
	n, _ := core.ParseUnitName(name)
	c.checkReading(name, mine, s.Requirements.ForUnit(n), s.Unit.Global)
	u := s.Unit
	u.Global = mine.Global
	return &SchedUnitRecord{SchedUnit: core.SchedUnit{Unit: u, Req: mine}, Contents: s.File.Bytes()}
}

// Command applies a desired-state command (load, start, stop, unload, destroy) to
// a submitted unit, with the state machine's checks.
func (c *Cluster) Command(cmd core.Command, name string) error {
	rec := c.units[name]
	from := core.JobState("")
	if rec != nil {
		from = rec.TargetState
	}
	to, err := core.Transition(name, cmd, from)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if rec == nil {
		return fmt.Errorf("sim: %s %s: %w", cmd, name, core.ErrUnitNotFound)
	}
	if cmd == core.CmdDestroy {
		destroy := func() error { return c.client.DestroyUnit(c.ctx, name) }
		gone := func() bool {
			_, err := c.backend.Registry.Unit(c.ctx, name)
			return errors.Is(err, core.ErrUnitNotFound)
		}
		if err := c.clientWrite(destroy, gone); err != nil {
			return fmt.Errorf("sim: destroy %s: %w", name, err)
		}
		delete(c.units, name)
		c.replacing = nil
		c.tracef("client", "destroy %s", name)
		c.userChange()
		return nil
	}
	if err := core.CheckActivatable(name, to); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	set := func() error { return c.client.SetTargetState(c.ctx, name, to) }
	applied := func() bool {
		u, err := c.backend.Registry.Unit(c.ctx, name)
		return err == nil && u.TargetState == to
	}
	if err := c.clientWrite(set, applied); err != nil {
		return fmt.Errorf("sim: %s %s: %w", cmd, name, err)
	}
	if to == core.Launched && rec.TargetState != core.Launched {
		c.opSeq++
		rec.launchedSeq = c.opSeq
	}
	rec.TargetState = to
	c.tracef("client", "%s %s (target %s)", cmd, name, to)
	c.userChange()
	return nil
}

// clientWrite runs a user's write as fleetctl would: again, up to three
// times, while the registry is unavailable (a timeout, or a lost reply). When
// a retry fails, or the last attempt is unavailable, applied reads the
// registry to tell whether an earlier attempt was applied after all (a create
// that finds its own unit, a destroy that finds none), as the user would by
// listing the units: then the write succeeded.
func (c *Cluster) clientWrite(write func() error, applied func() bool) error {
	err := write()
	for range 2 {
		if !errors.Is(err, core.ErrUnavailable) {
			return err
		}
		if err = write(); err != nil && applied() {
			return nil
		}
	}
	if errors.Is(err, core.ErrUnavailable) && !c.registryDown && applied() {
		return nil
	}
	return err
}

// SubmitAndStart submits a unit and sets it launched.
func (c *Cluster) SubmitAndStart(name string, contents []byte) error {
	if err := c.Submit(name, contents); err != nil && !errors.Is(err, core.ErrUnitExists) {
		return err
	}
	return c.Command(core.CmdStart, name)
}

// userChange notes that a leader must plan again before the cluster counts as
// converged. Who wakes is the registry's business: see deliverWakeups.
func (c *Cluster) userChange() { c.planned, c.unitsVersion = false, c.unitsVersion+1 }
