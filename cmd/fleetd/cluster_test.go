package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/backends/etcd"
)

// isLeader reads a fleetd's fleet_engine_leader metric.
func isLeader(p *proc) bool {
	body, err := metricsText(p)
	return err == nil && strings.Contains(body, "\nfleet_engine_leader 1\n")
}

// metricsText reads a fleetd's /metrics over its unix socket.
func metricsText(p *proc) (string, error) {
	sock := filepath.Join(p.dir, "fleet.sock")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://fleetd/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// TestThreeMachinesFailover runs three fleetd processes (fake unit managers)
// on one etcd, each with an engine. Killing the engine leader's process moves
// its units to the others within agent_ttl + 1 s; a draining fleetd leaves the
// cluster at once; a second live fleetd with a machine ID in use is refused.
func TestThreeMachinesFailover(t *testing.T) {
	srv, err := etcd.StartEmbedded(context.Background(), etcd.EmbeddedConfig{TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	const ttl = 2 * time.Second
	common := []string{"-etcd_servers", srv.Endpoints()[0], "-unit_manager", "fake", "-agent_ttl", ttl.String(), "-engine_reconcile_interval", "0.2"}
	var ps []*proc
	for i := 1; i <= 3; i++ {
		ps = append(ps, startFleetd(t, newMachineDir(t, fmt.Sprintf("m%d", i)), nil, common...))
	}
	c := ps[1].client
	ctx := context.Background()
	eventually(t, 10*time.Second, "three machines", func() bool {
		ms, err := c.Machines(ctx)
		return err == nil && len(ms) == 3
	})
	const n = 9
	for i := range n {
		launch(t, c, fmt.Sprintf("u%d.service", i), unitOptions("Service", "ExecStart=/bin/sleep infinity"))
	}
	where := func() map[string]string {
		us, err := c.Units(ctx)
		out := map[string]string{}
		if err != nil {
			return out
		}
		for _, u := range us {
			if u.CurrentState == "launched" {
				out[u.Name] = u.MachineID
			}
		}
		return out
	}
	eventually(t, 10*time.Second, "nine units launched", func() bool { return len(where()) == n })
	var leader *proc
	eventually(t, 10*time.Second, "one engine leading", func() bool {
		for _, p := range ps {
			if isLeader(p) {
				leader = p
				return true
			}
		}
		return false
	})
	deadID := machineIDOf(ps, leader)
	var survivor, other *proc
	for _, p := range ps {
		switch {
		case p == leader:
		case survivor == nil:
			survivor = p
		default:
			other = p
		}
	}
	killed := time.Now()
	leader.kill()
	eventually(t, ttl+5*time.Second, "every unit launched on a live machine", func() bool {
		w := where()
		if len(w) != n {
			return false
		}
		for _, m := range w {
			if m == deadID {
				return false
			}
		}
		return true
	})
	took := time.Since(killed)
	t.Logf("units of the killed leader %s launched elsewhere %v after the kill", deadID, took.Round(time.Millisecond))
	if took > ttl+time.Second {
		t.Errorf("failover took %v, want within agent_ttl + 1 s = %v", took, ttl+time.Second)
	}
	c = survivor.client

	// A second live fleetd with a machine ID in use is refused.
	dup := newMachineDir(t, machineIDOf(ps, survivor))
	q := startProc(t, dup, nil, append(baseArgs(dup), common...)...)
	if code := q.wait(ttl + 20*time.Second); code == 0 || !strings.Contains(q.log.String(), "held by another live fleetd") {
		t.Errorf("duplicate machine ID: exit %d, output %q", code, q.log.String())
	}

	// A draining fleetd leaves at once, long before its TTL.
	other.signal(syscall.SIGTERM)
	if code := other.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	ms, err := c.Machines(ctx)
	if err != nil || len(ms) != 1 {
		t.Errorf("machines right after a drain: %+v %v, want only the survivor", ms, err)
	}
}

// machineIDOf is the machine ID of p among ps (m1, m2, m3 in order).
func machineIDOf(ps []*proc, p *proc) string {
	for i, q := range ps {
		if q == p {
			return fmt.Sprintf("m%d", i+1)
		}
	}
	return ""
}
