package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/backends/memory"
	"github.com/fleet-rebuild/fleet/core"
)

func TestInterceptCallsThroughOrReplaces(t *testing.T) {
	ctx := t.Context()
	base := memory.New(&Clock{now: Epoch})
	errBoom := errors.New("boom")
	var sawBase bool
	reg := Intercept(base, RegistryFuncs{
		DestroyUnit: func(ctx context.Context, r core.Registry, name string) error {
			sawBase = r == base
			return errBoom
		},
	})
	s, err := core.PrepareUnit("a.service", unitBody(""))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.CreateUnit(ctx, s.Unit, s.File.Bytes()); err != nil {
		t.Fatalf("CreateUnit, not intercepted: %v", err)
	}
	if _, err := base.Unit(ctx, "a.service"); err != nil {
		t.Fatalf("CreateUnit did not reach the registry: %v", err)
	}
	if err := reg.DestroyUnit(ctx, "a.service"); !errors.Is(err, errBoom) || !sawBase {
		t.Fatalf("DestroyUnit: %v (got the wrapped registry: %t), want the intercepting function's error", err, sawBase)
	}
	if _, err := base.Unit(ctx, "a.service"); err != nil {
		t.Fatalf("the intercepted DestroyUnit reached the registry: %v", err)
	}
}

// TestRegistryFaultsHoldInvariants runs a cluster whose every registry call may
// time out or lose its reply and whose wake-ups may be dropped: the faults
// strike, the invariants hold, and after healing the cluster converges.
func TestRegistryFaultsHoldInvariants(t *testing.T) {
	c := newTestCluster(t, 7, 4)
	c.RunFor(time.Second)
	c.SetRegistryFaults(RegistryFaults{LoseReply: 0.2, SlowCall: 0.1, DropWakeup: 0.3})
	for i := range 12 {
		name := fmt.Sprintf("u%d.service", i)
		if err := c.SubmitAndStart(name, unitBody("")); err != nil && !errors.Is(err, core.ErrUnavailable) {
			t.Fatalf("submit %s: %v", name, err)
		}
	}
	if err := c.RunFor(2 * time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(c.Trace(), "\n"))
	}
	c.Heal()
	if _, err := c.RunUntilConverged(5*time.Minute, time.Second); err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(c.Trace(), "\n"))
	}
	kinds := map[string]bool{}
	for _, l := range c.Trace() {
		for _, k := range []string{"timed out", "lost", "wake-up dropped"} {
			if strings.Contains(l, "registry fault:") && strings.Contains(l, k) {
				kinds[k] = true
			}
		}
	}
	if len(kinds) != 3 {
		t.Errorf("registry faults that struck: %v, want timeouts, lost replies and dropped wake-ups", kinds)
	}
}
