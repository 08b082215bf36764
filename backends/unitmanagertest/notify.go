package unitmanagertest

import (
	"context"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// closeTimeout bounds, in real time, the wait for a Notify channel to close
// after its context is done. Closing is asynchronous on every backend.
const closeTimeout = 10 * time.Second

// drain empties a notification channel without blocking.
func drain(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("Notify channel closed while its context is live")
		}
	default:
	}
}

// waitNotified polls ch, calling Settle between polls, until it yields a value.
func waitNotified(t *testing.T, inst Instance, ch <-chan struct{}, after string) {
	t.Helper()
	for i := 0; ; i++ {
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("Notify channel closed while its context is live (waiting for the change after %s)", after)
			}
			return
		default:
		}
		if i == MaxSettles {
			t.Fatalf("no notification within %d settles after %s", MaxSettles, after)
		}
		inst.Settle()
	}
}

func testNotify(t *testing.T, inst Instance) {
	const name = "fleet-conformance-notify.service"
	install(t, inst, name, sleeper)
	waitState(t, inst, name, core.ActiveInactive, "dead")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := inst.Manager.Notify(ctx)
	drain(t, ch)
	start(t, inst.Manager, name)
	waitNotified(t, inst, ch, "Start")

	// Notifications keep coming: one per change, not one per channel.
	waitState(t, inst, name, core.ActiveActive, "running")
	drain(t, ch)
	stop(t, inst.Manager, name)
	waitNotified(t, inst, ch, "Stop")
}

// waitClosed waits in real time for ch to close, discarding values.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	timeout := time.NewTimer(closeTimeout)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout.C:
			t.Fatalf("Notify channel not closed %s %v after its context was done", what, closeTimeout)
		}
	}
}

func testNotifyCancel(t *testing.T, inst Instance) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := inst.Manager.Notify(ctx)
	cancel()
	waitClosed(t, ch, "when cancelled")

	done, cancelDone := context.WithCancel(t.Context())
	cancelDone()
	waitClosed(t, inst.Manager.Notify(done), "when Notify got a done context")

	// Changes after the subscribers left must not reach their closed channels
	// (a send on a closed channel panics).
	const name = "fleet-conformance-notify-cancel.service"
	installAndStart(t, inst, name, sleeper)
}
