package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// waitOptions are the blocking flags of load, start, stop, unload and
// destroy.
type waitOptions struct {
	noBlock  bool
	attempts int
}

// waitStates waits until every unit of names reads state: the cluster-level
// current state, or for a global unit its desired state. Each unit is
// reported once it does ("Unit <name> <state>[ on <machine>]"); the wait
// gives up after attempts polling windows (0: never) with an error naming
// every unit still waited for and the state it is in. On a terminal stderr
// shows how many have arrived.
func (a *app) waitStates(ctx context.Context, c fleetclient.Client, names []string, state string, attempts int, withMachine bool) error {
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	deadline := a.deadline(attempts)
	progress := a.isTerminal() && len(names) > 1
	last := map[string]string{}
	arrived := map[string]bool{}
	var reported []string
	for {
		units, err := c.Units(ctx)
		if err != nil {
			return fmt.Errorf("error waiting for units: %w", err)
		}
		byName := map[string]api.Unit{}
		for _, u := range units {
			byName[u.Name] = u
		}
		for _, n := range names {
			if !pending[n] {
				continue
			}
			u, ok := byName[n]
			cur := currentOf(u)
			if !ok {
				cur = "destroyed"
			}
			last[n] = cur
			if cur == state {
				arrived[n] = true
			}
		}
		// Report in the order given, so output does not depend on timing.
		for len(reported) < len(names) && arrived[names[len(reported)]] {
			n := names[len(reported)]
			reported = append(reported, n)
			delete(pending, n)
			if progress {
				fmt.Fprint(a.stderr, "\r\033[K")
			}
			if err := a.reportState(ctx, c, byName[n], state, withMachine); err != nil {
				return err
			}
		}
		if len(pending) == 0 {
			if progress {
				fmt.Fprint(a.stderr, "\r\033[K")
			}
			return nil
		}
		if progress {
			fmt.Fprintf(a.stderr, "\r\033[K%d of %d units %s; waiting for %s", len(arrived), len(names), state, strings.Join(waiting(names, pending), " "))
		}
		if a.expired(deadline) {
			if progress {
				fmt.Fprint(a.stderr, "\r\033[K")
			}
			var errs []error
			for _, n := range waiting(names, pending) {
				if arrived[n] {
					if err := a.reportState(ctx, c, byName[n], state, withMachine); err != nil {
						return err
					}
					continue
				}
				errs = append(errs, fmt.Errorf("timed out waiting for unit %s to report state %s (it is %s)", n, state, last[n]))
			}
			return errors.Join(errs...)
		}
		if err := a.pause(ctx); err != nil {
			return err
		}
	}
}

// deadline is the end of a wait of attempts polling windows; zero (never)
// for 0.
func (a *app) deadline(attempts int) time.Time {
	if attempts <= 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(attempts) * a.attemptTime)
}

// expired reports whether a deadline made by deadline has passed.
func (a *app) expired(deadline time.Time) bool {
	return !deadline.IsZero() && !time.Now().Before(deadline)
}

// pause waits one polling interval, or until ctx ends.
func (a *app) pause(ctx context.Context) error {
	t := time.NewTimer(a.pollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waiting lists the pending names in the order given.
func waiting(names []string, pending map[string]bool) []string {
	var out []string
	for _, n := range names {
		if pending[n] {
			out = append(out, n)
		}
	}
	return out
}

// reportState prints "Unit <name> <state>", with " on <machine>" when asked
// and the unit is placed.
func (a *app) reportState(ctx context.Context, c fleetclient.Client, u api.Unit, state string, withMachine bool) error {
	if withMachine && u.MachineID != "" {
		legend, err := a.machineLegend(ctx, c, u.MachineID, false)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "Unit %s %s on %s\n", u.Name, state, legend)
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "Unit %s %s\n", u.Name, state)
	return err
}
