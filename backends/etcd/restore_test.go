package etcd

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/core"
)

// TestNotifyAfterRestore: when the store's revision goes backwards (a restore
// from an older copy of the data without --bump-revision), a watch resumed at
// a revision the store has not reached would never fire. The registry notices
// the lower revision in a reply, the Notify channel wakes its caller (who
// relists), and later changes wake it again.
func TestNotifyAfterRestore(t *testing.T) {
	cfg := EmbeddedConfig{Dir: filepath.Join(t.TempDir(), "data"), TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true, Logger: zap.NewNop()}
	srv := startServer(t, cfg)
	cfg = srv.Config()
	cli := dial(t, ClientConfig{Endpoints: srv.Endpoints()})
	reg, err := New(cli, WithRequestTimeout(time.Second), WithRetry(10, 100*time.Millisecond))
	must(t, err)
	ctx := t.Context()
	a, ac := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, a, ac))

	// The older copy: the data directory while the server is stopped.
	must(t, srv.Close())
	old := filepath.Join(t.TempDir(), "old")
	must(t, os.CopyFS(old, os.DirFS(cfg.Dir)))
	srv = startServer(t, cfg)
	for i := range 20 {
		must(t, reg.SetTargetState(ctx, "a.service", []core.JobState{core.Loaded, core.Launched}[i%2]))
	}
	watch := reg.Notify(ctx, core.Scope{})
	must(t, reg.Settle(ctx))
	woken(watch)

	// Restore: the same member and URLs on the older data.
	must(t, srv.Close())
	restored := cfg
	restored.Dir = old
	srv = startServer(t, restored)
	b, bc := testUnit("b.service", false, "b")
	must(t, reg.CreateUnit(ctx, b, bc))
	waitWake(t, watch, "the first reply at a lower revision")
	must(t, reg.Settle(ctx))
	woken(watch)
	c, cc := testUnit("c.service", false, "c")
	must(t, reg.CreateUnit(ctx, c, cc))
	waitWake(t, watch, "a change after the restore")
	us, err := reg.Units(ctx)
	must(t, err)
	if len(us) != 3 {
		t.Fatalf("Units after the restore: %v, want a, b and c", us)
	}
}
