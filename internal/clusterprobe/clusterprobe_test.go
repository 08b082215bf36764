package clusterprobe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
)

func TestServicesAndPIDs(t *testing.T) {
	root := t.TempDir()
	write := func(rel, procs string) {
		d := filepath.Join(root, rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(procs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("m1/manager", "10\n")
	write("m1/manager/app.slice/a.service", "12\n11\n")
	write("m1/manager/app.slice/idle.service", "")
	write("m1/fleetd", "20\n")
	write("m2/manager/app.slice/a.service", "30\n")

	svcs, err := Services(root, "m1")
	if err != nil || len(svcs) != 1 || !slices.Equal(svcs["a.service"], []int{12, 11}) {
		t.Errorf("Services(m1) = %v, %v; want only a.service [12 11]", svcs, err)
	}
	if pids, err := UnitPIDs(root, "m1", "a.service"); err != nil || !slices.Equal(pids, []int{11, 12}) {
		t.Errorf("UnitPIDs(m1, a) = %v, %v; want [11 12]", pids, err)
	}
	if pids, err := UnitPIDs(root, "m3", "a.service"); err != nil || pids != nil {
		t.Errorf("UnitPIDs of a missing machine = %v, %v; want none", pids, err)
	}
	if pids, err := TreePIDs(filepath.Join(root, "m1")); err != nil || len(pids) != 4 {
		t.Errorf("TreePIDs(m1) = %v, %v; want 4 processes", pids, err)
	}
	write("m2/manager/app.slice/b.service", "x\n")
	if _, err := Services(root, "m2"); err == nil {
		t.Error("Services read a malformed cgroup.procs without an error")
	}
}

func TestStarts(t *testing.T) {
	log := filepath.Join(t.TempDir(), "starts")
	if n, err := Starts(log); err != nil || len(n) != 0 {
		t.Errorf("Starts of a missing log = %v, %v; want empty", n, err)
	}
	if err := os.WriteFile(log, []byte("a.service m1\nb.service m2\na.service m3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := Starts(log)
	if err != nil || !slices.Equal(n["a.service"], []string{"m1", "m3"}) || len(n["b.service"]) != 1 {
		t.Errorf("Starts = %v, %v", n, err)
	}
	if err := os.WriteFile(log, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Starts(log); err == nil {
		t.Error("Starts read a malformed line without an error")
	}
}

func TestMetrics(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var body atomic.Value
	body.Store("# HELP x\nfleet_engine_leader 1\nfleet_engine_passes_total{kind=\"full\",result=\"ok\"} 3\nfleet_engine_passes_total{kind=\"renew\",result=\"ok\"} 4\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body.Load())
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	s, err := Metrics(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	if s["fleet_engine_leader"] != 1 || s[`fleet_engine_passes_total{kind="renew",result="ok"}`] != 4 {
		t.Errorf("Metrics = %v", s)
	}
	body.Store("fleet_engine_leader one\n")
	if _, err := Metrics(context.Background(), sock); err == nil {
		t.Error("Metrics read a malformed sample without an error")
	}
}
