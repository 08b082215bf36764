package sim

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// etcdServer is shared by the tests of this package that run on etcd.
var etcdServer *EtcdServer

func TestMain(m *testing.M) {
	code := m.Run()
	if etcdServer != nil {
		etcdServer.Close()
	}
	os.Exit(code)
}

func sharedEtcd(t testing.TB) *EtcdServer {
	t.Helper()
	if etcdServer == nil {
		s, err := StartEtcd(context.Background())
		if err != nil {
			t.Fatalf("embedded etcd: %v", err)
		}
		etcdServer = s
	}
	return etcdServer
}

// runFailoverStory runs a small story with a machine loss and an engine change
// on the given backend and returns the cluster.
func runFailoverStory(t *testing.T, backend BackendFactory) *Cluster {
	t.Helper()
	s := NewScript(map[string]BackendFactory{"etcd": backend})
	t.Cleanup(func() { s.Close() })
	lines := []string{
		"cluster seed=11 backend=etcd",
		"add-machine m1 engine", "add-machine m2 engine", "add-machine m3 region=eu",
		"run 1s",
		"submit a.service b.service c.service d.service",
		"start a.service b.service c.service d.service",
		"converge",
		"crash m1",
		"run 45s",
		"restart-systemd m3",
		"converge",
		"return m1",
		"converge",
	}
	for _, l := range lines {
		out, err := s.Exec(strings.Fields(l), "")
		if err != nil || strings.Contains(out, "error") {
			t.Fatalf("%s: %v %s", l, err, out)
		}
	}
	c := s.Cluster()
	if len(c.Violations()) > 0 {
		t.Fatalf("invariants broken: %v", c.Violations())
	}
	return c
}

// TestEtcdSameSeedSameTrace runs the same story on two fresh etcd servers: the
// traces, leadership epochs (etcd revisions) included, are byte-identical.
func TestEtcdSameSeedSameTrace(t *testing.T) {
	run := func() string {
		srv, err := StartEtcd(context.Background())
		if err != nil {
			t.Fatalf("embedded etcd: %v", err)
		}
		defer srv.Close()
		return runFailoverStory(t, srv.Backend()).TraceHash()
	}
	a, b := run(), run()
	if a != b {
		t.Errorf("the same scenario and seed gave different traces on etcd: %s vs %s", a, b)
	}
}

// decisions keeps the trace lines that say what the engines and agents decided,
// without leadership epochs (which are revisions, and differ by backend).
func decisions(trace []string) string {
	var out []string
	for _, l := range trace {
		if strings.Contains(l, "leadership: epoch") || strings.Contains(l, "backend") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func TestEtcdDecisionsMatchMemory(t *testing.T) {
	srv := sharedEtcd(t)
	onEtcd := decisions(runFailoverStory(t, srv.Backend()).Trace())
	onMemory := decisions(runFailoverStory(t, MemoryBackend).Trace())
	if onEtcd != onMemory {
		t.Errorf("decisions differ between etcd and memory for the same seed:\n--- etcd\n%s\n--- memory\n%s", onEtcd, onMemory)
	}
}

func TestEtcdGeneratedClusterWithFaults(t *testing.T) {
	srv := sharedEtcd(t)
	rep, err := Generate(GenConfig{Machines: 8, Units: 40, Seed: 3, Faults: FaultsHeavy, Duration: 2 * time.Minute, Backend: srv.Backend()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("generated cluster on etcd:\n%s", rep)
	}
}
