package etcd

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/core"
)

// startServer starts a server of the test's own, closed at the end of the test.
func startServer(t *testing.T, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := StartEmbedded(ctx, cfg)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func dial(t *testing.T, cfg ClientConfig) *clientv3.Client {
	t.Helper()
	cli, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestDurableAcrossRestart: what was submitted survives a restart of the
// server on the same data directory, with fsync on; while the server is down
// calls fail with ErrUnavailable after bounded retries, and a Notify watch
// resumes when it is back. (Stopping a server with a watch open takes etcd's
// request timeout, about 5 s: it waits for the watch stream.)
func TestDurableAcrossRestart(t *testing.T) {
	cfg := EmbeddedConfig{Dir: t.TempDir(), TickMs: 10, ElectionMs: 100, Logger: zap.NewNop()}
	srv := startServer(t, cfg)
	cli := dial(t, ClientConfig{Endpoints: srv.Endpoints()})
	reg, err := New(cli, WithRequestTimeout(500*time.Millisecond), WithRetry(2, 50*time.Millisecond))
	must(t, err)
	ctx := t.Context()
	u, contents := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, u, contents))
	must(t, reg.SetTargetState(ctx, "a.service", core.Launched))
	f, err := reg.AcquireLeadership(ctx, "e1", "e1/1", time.Minute)
	must(t, err)
	must(t, second(reg.ApplySchedule(ctx, f, []core.ScheduleOp{placeOp("a.service", "m1")})))
	must(t, reg.Heartbeat(ctx, core.MachineState{ID: "m1"}, "s1", time.Minute))
	want := snapshot(t, reg)

	must(t, srv.Restart(ctx))
	if got := snapshot(t, reg); got != want {
		t.Fatalf("after a restart:\n got  %s\n want %s", got, want)
	}
	must(t, second(reg.ApplySchedule(ctx, f, nil))) // the leadership lease survived too

	watch := reg.Notify(ctx, core.Scope{})
	must(t, reg.Settle(ctx))
	woken(watch)
	resolved := srv.Config()
	must(t, srv.Close())
	start := time.Now()
	_, err = reg.Units(ctx)
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Units while etcd is down: got %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Units while etcd is down took %v; retries are not bounded", d)
	}
	down := reg.Notify(ctx, core.Scope{Machine: "m1"})
	waitWake(t, down, "Notify while etcd is down (the caller must read and learn)")

	srv = startServer(t, resolved) // a new process on the same directory and ports
	fresh := dial(t, ClientConfig{Endpoints: srv.Endpoints()})
	again, err := New(fresh)
	must(t, err)
	if got := snapshot(t, again); got != want {
		t.Fatalf("after a stop and a new start:\n got  %s\n want %s", got, want)
	}
	b, bc := testUnit("b.service", false, "b")
	must(t, again.CreateUnit(ctx, b, bc))
	waitWake(t, watch, "a unit created after etcd came back")
}

// snapshot renders what the registry holds, leaving out revisions.
func snapshot(t *testing.T, reg *Registry) string {
	t.Helper()
	ctx := t.Context()
	us, err := reg.Units(ctx)
	must(t, err)
	ps, err := reg.Placements(ctx)
	must(t, err)
	ms, err := reg.Machines(ctx)
	must(t, err)
	out := ""
	for _, u := range us {
		c, err := reg.UnitContents(ctx, u.Hash)
		must(t, err)
		out += u.Name + ":" + string(u.TargetState) + ":" + string(c) + " "
	}
	for _, p := range ps {
		out += p.Unit + "@" + p.Machine + ":" + string(p.TargetState) + " "
	}
	for _, m := range ms {
		out += "machine " + m.ID
	}
	return out
}

// TestAuth: with etcd's auth on, only the right credentials get in.
func TestAuth(t *testing.T) {
	srv := startServer(t, testServerConfig())
	ctx := t.Context()
	admin := dial(t, ClientConfig{Endpoints: srv.Endpoints()})
	_, err := admin.UserAdd(ctx, "root", "secret")
	must(t, err)
	_, err = admin.UserGrantRole(ctx, "root", "root")
	must(t, err)
	_, err = admin.AuthEnable(ctx)
	must(t, err)

	if cli, err := Dial(ctx, ClientConfig{Endpoints: srv.Endpoints(), Username: "root", Password: "wrong"}); err == nil {
		cli.Close()
		t.Fatal("Dial with a wrong password succeeded")
	}
	if cli, err := Dial(ctx, ClientConfig{Endpoints: srv.Endpoints()}); err == nil || errors.Is(err, core.ErrUnavailable) {
		if cli != nil {
			cli.Close()
		}
		t.Fatalf("Dial without credentials: got %v, want a permission error", err)
	}
	cli := dial(t, ClientConfig{Endpoints: srv.Endpoints(), Username: "root", Password: "secret"})
	reg, err := New(cli)
	must(t, err)
	u, c := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, u, c))
}

// TestDialErrors: bad configurations and unreachable endpoints fail clearly
// and quickly.
func TestDialErrors(t *testing.T) {
	ctx := t.Context()
	for name, cfg := range map[string]ClientConfig{
		"no endpoints":     {},
		"cert without key": {Endpoints: shared.srv.Endpoints(), CertFile: "c.pem"},
		"missing CA file":  {Endpoints: shared.srv.Endpoints(), CAFile: "/nonexistent/ca.pem"},
	} {
		if cli, err := Dial(ctx, cfg); err == nil {
			cli.Close()
			t.Errorf("Dial with %s: no error", name)
		}
	}
	url, err := loopbackURL("http") // nothing listens there
	must(t, err)
	start := time.Now()
	_, err = Dial(ctx, ClientConfig{Endpoints: []string{url}, DialTimeout: 300 * time.Millisecond})
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Dial of a closed port: got %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Dial of a closed port took %v", d)
	}
}

// TestStartEmbeddedPortTaken: a taken port is reported as such (StartEmbedded
// retries with other ports only for ports it chose), and the temporary data
// directory is removed.
func TestStartEmbeddedPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, err = StartEmbedded(t.Context(), EmbeddedConfig{ClientURL: "http://" + l.Addr().String(), Logger: zap.NewNop()})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("StartEmbedded on a taken port: got %v, want EADDRINUSE", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("data directory left behind: %v", left)
	}
}
