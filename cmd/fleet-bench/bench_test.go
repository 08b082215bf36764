package main

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadKnobs(t *testing.T) {
	for _, name := range []string{"BENCH_PARTS", "BENCH_SCALE_MACHINES", "BENCH_SCALE_UNITS", "BENCH_SCALE_KILL"} {
		t.Setenv(name, "") // the defaults, whatever the caller's environment says
	}
	t.Setenv("BENCH_SIZES", "300,100")
	t.Setenv("BENCH_AGENT_TTL", "3s")
	t.Setenv("BENCH_IDLE_SECONDS", "5")
	k, err := readKnobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.sizes) != 2 || k.sizes[0] != 100 || k.sizes[1] != 300 || k.agentTTL != 3*time.Second || k.idle != 5*time.Second {
		t.Fatalf("knobs %+v", k)
	}
	for name, value := range map[string]string{"BENCH_SIZES": "10,x", "BENCH_SCALE_KILL": "100", "BENCH_IDLE_SECONDS": "0"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			if _, err := readKnobs(); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%s: error %v, want one naming it", name, value, err)
			}
		})
	}
}

// TestMetrics serves a /metrics page on a unix socket and checks what the
// benchmark reads from it.
func TestMetrics(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "fleet.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	page := `# HELP fleet_etcd_requests_total Requests.
# TYPE fleet_etcd_requests_total counter
fleet_etcd_requests_total{method="/etcdserverpb.KV/Txn"} 12
fleet_etcd_requests_total{method="/etcdserverpb.KV/Range"} 3
fleet_engine_leader 1
fleet_agent_passes_total 7
`
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(page))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	ms := []machine{{Name: "m1", Socket: socket}, {Name: "m2", Socket: socket}}
	req, err := etcdRequests(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	if req["/etcdserverpb.KV/Txn"] != 24 || req["/etcdserverpb.KV/Range"] != 6 || sum(req) != 30 {
		t.Fatalf("requests %v", req)
	}
	if got := perUnit(map[string]float64{"/etcdserverpb.KV/Txn": 4}, req, 10); got != "2.60 (KV/Range 0.60, KV/Txn 2.00)" {
		t.Fatalf("perUnit: %q", got)
	}
	c, err := counters(ctx, ms, "fleet_agent_passes_total", "fleet_engine_leader")
	if err != nil || c["fleet_agent_passes_total"] != 14 || c["fleet_engine_leader"] != 2 {
		t.Fatalf("counters %v, %v", c, err)
	}
	if m, err := leader(ctx, ms); err != nil || m.Name != "m1" {
		t.Fatalf("leader %v, %v", m, err)
	}
}
