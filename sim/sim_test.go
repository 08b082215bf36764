package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func unitBody(xfleet string) []byte {
	b := "[Service]\nExecStart=/bin/sleep 3600\n"
	if xfleet != "" {
		b += "\n[X-Fleet]\n" + xfleet + "\n"
	}
	return []byte(b)
}

func newTestCluster(t *testing.T, seed uint64, machines int) *Cluster {
	t.Helper()
	c, err := New(Config{Seed: seed, KeepTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := 1; i <= machines; i++ {
		if _, err := c.AddMachine(fmt.Sprintf("m%d", i), map[string]string{"n": fmt.Sprint(i)}, i <= 2); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestSpreadAndFailover(t *testing.T) {
	c := newTestCluster(t, 1, 3)
	c.RunFor(time.Second)
	for i := 0; i < 9; i++ {
		if err := c.SubmitAndStart(fmt.Sprintf("u%d.service", i), unitBody("")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RunUntilConverged(time.Minute, time.Second); err != nil {
		t.Fatalf("%v\n%s", err, c.Trace())
	}
	if err := c.CrashMachine("m3"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunUntilConverged(2*time.Minute, time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	if len(c.failovers) != 3 {
		t.Errorf("want 3 failovers, got %+v\n%s", c.failovers, strings.Join(c.Trace(), "\n"))
	}
	for _, f := range c.failovers {
		if f.Latency > time.Second {
			t.Errorf("failover %+v took longer than one engine pass after expiry", f)
		}
	}
}

func TestSameSeedSameTrace(t *testing.T) {
	run := func() string {
		c := newTestCluster(t, 42, 4)
		for i := 0; i < 12; i++ {
			c.SubmitAndStart(fmt.Sprintf("u%d.service", i), unitBody("Conflicts=u1*.service"))
		}
		c.RunFor(10 * time.Second)
		c.CrashMachine("m2")
		c.RunFor(time.Minute)
		c.Heal()
		if _, err := c.RunUntilConverged(2*time.Minute, time.Second); err != nil {
			t.Fatal(err)
		}
		return c.TraceHash()
	}
	a, b := run(), run()
	if a != b || a == "" {
		t.Errorf("trace hashes differ for the same seed: %s vs %s", a, b)
	}
}
