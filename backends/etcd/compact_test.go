package etcd

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/fleet-rebuild/fleet/core"
)

// TestEmbeddedDefaultsCompactAndQuota: the zero configuration compacts history
// periodically and sets a backend quota, so that fleetd's single-machine
// default never grows until etcd's no-space alarm stops every write.
func TestEmbeddedDefaultsCompactAndQuota(t *testing.T) {
	e := &Embedded{cfg: EmbeddedConfig{Name: "fleet", Dir: t.TempDir(), ClientURL: "http://127.0.0.1:1", PeerURL: "http://127.0.0.1:2"}}
	ec, err := e.etcdConfig()
	must(t, err)
	if ec.AutoCompactionMode != embed.CompactorModePeriodic || ec.AutoCompactionRetention != DefaultCompactionRetention.String() {
		t.Errorf("auto-compaction %q %q, want periodic %v", ec.AutoCompactionMode, ec.AutoCompactionRetention, DefaultCompactionRetention)
	}
	if ec.QuotaBackendBytes != DefaultQuotaBytes {
		t.Errorf("quota %d bytes, want %d", ec.QuotaBackendBytes, DefaultQuotaBytes)
	}
}

// TestCompactionKeepsDatabaseBounded: many target-state changes, with a short
// compaction retention, leave the database's size bounded, as the space
// compaction frees is reused: after each round of changes, once all but the
// last revision is compacted away, the database is no larger than after the
// first round plus a margin (without compaction the second round doubles it).
// FLEET_ETCD_COMPACT_ROUNDS sets the number of rounds (3 by default) for a
// long run.
func TestCompactionKeepsDatabaseBounded(t *testing.T) {
	rounds := 3
	if s := os.Getenv("FLEET_ETCD_COMPACT_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		must(t, err)
		rounds = n
	}
	const changes = 1500 // per round
	cfg := testServerConfig()
	cfg.CompactionRetention = time.Second
	srv := startServer(t, cfg)
	cli := dial(t, ClientConfig{Endpoints: srv.Endpoints()})
	reg, err := New(cli)
	must(t, err)
	ctx := t.Context()
	u, c := testUnit("a.service", false, "a")
	must(t, reg.CreateUnit(ctx, u, c))
	f, err := reg.AcquireLeadership(ctx, "e1", "e1/1", time.Minute)
	must(t, err)
	must(t, second(reg.ApplySchedule(ctx, f, []core.ScheduleOp{placeOp("a.service", "m1")})))
	var first int64
	for round := range rounds {
		for i := range changes {
			must(t, reg.SetTargetState(ctx, "a.service", []core.JobState{core.Loaded, core.Launched}[i%2]))
		}
		resp, err := cli.Get(ctx, "end")
		must(t, err)
		waitCompacted(t, srv, resp.Header.Revision-1)
		st, err := cli.Status(ctx, srv.Endpoints()[0])
		must(t, err)
		t.Logf("round %d: database %d bytes, %d in use", round+1, st.DbSize, st.DbSizeInUse)
		if round == 0 {
			first = st.DbSize
		} else if st.DbSize > first+first/2 {
			t.Fatalf("round %d: database of %d bytes, after the first round %d: history is not compacted", round+1, st.DbSize, first)
		}
	}
}

// waitCompacted waits (at most 30 s) until revision rev has been compacted
// away: reading at it fails with ErrCompacted.
func waitCompacted(t *testing.T, srv *Embedded, rev int64) {
	t.Helper()
	cli := dial(t, ClientConfig{Endpoints: srv.Endpoints()})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		_, err := cli.Get(ctx, "any", clientv3.WithRev(rev))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("revision %d not compacted within 30 s (last error %v)", rev, err)
		}
		if sleep(ctx, 50*time.Millisecond) != nil {
			t.Fatalf("revision %d not compacted within 30 s", rev)
		}
	}
}
