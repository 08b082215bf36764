package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/procfs"
)

// benchCluster is three fleetd processes with the fake unit manager: the
// first runs the embedded etcd and exposes it, the other two join it. The
// observer reads etcd directly, so its polling is not counted as fleetd's
// requests.
type benchCluster struct {
	procs    []*proc
	observer *etcd.Registry
}

func startBenchCluster(b *testing.B) *benchCluster {
	b.Helper()
	clientURL := freeURL(b)
	common := []string{"-unit_manager", "fake", "-agent_ttl", "10s"}
	first := newMachineDir(b, "m1")
	c := &benchCluster{}
	c.procs = append(c.procs, startFleetd(b, first, nil, append([]string{"-embedded_etcd_client_url", clientURL, "-embedded_etcd_peer_url", freeURL(b)}, common...)...))
	for i := 2; i <= 3; i++ {
		c.procs = append(c.procs, startFleetd(b, newMachineDir(b, fmt.Sprintf("m%d", i)), nil, append([]string{"-etcd_servers", clientURL}, common...)...))
	}
	cli, err := etcd.Dial(context.Background(), etcd.ClientConfig{Endpoints: []string{clientURL}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	reg, err := etcd.New(cli, etcd.WithPrefix("/_coreos.com/fleet/"))
	if err != nil {
		b.Fatal(err)
	}
	c.observer = reg
	eventually(b, 30*time.Second, "three machines", func() bool {
		ms, err := reg.Machines(context.Background())
		return err == nil && len(ms) == 3
	})
	return c
}

// launched counts the units whose cluster-level state is launched.
func (c *benchCluster) launched(ctx context.Context) (int, error) {
	ps, err := c.observer.Placements(ctx)
	if err != nil {
		return 0, err
	}
	ss, err := c.observer.UnitStates(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, st := range core.CurrentStates(ps, ss) {
		if st == core.Launched {
			n++
		}
	}
	return n, nil
}

// launchAll creates and starts n units through the three fleetd's APIs,
// spread across them, with workers requests in flight.
func (c *benchCluster) launchAll(b *testing.B, prefix string, n, workers int) {
	b.Helper()
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := range workers {
		cl := c.procs[w%len(c.procs)].client
		wg.Go(func() {
			for name := range names {
				err := cl.CreateUnit(context.Background(), api.Unit{Name: name, DesiredState: "launched",
					Options: unitOptions("Service", "ExecStart=/bin/sleep infinity")})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("create %s: %w", name, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		names <- fmt.Sprintf("%s-%05d.service", prefix, i)
	}
	close(names)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// waitLaunched waits until want units report launched.
func (c *benchCluster) waitLaunched(b *testing.B, want int, limit time.Duration) {
	b.Helper()
	eventually(b, limit, fmt.Sprintf("%d units launched", want), func() bool {
		n, err := c.launched(context.Background())
		return err == nil && n >= want
	})
}

// etcdRequests sums the fleet_etcd_requests_total counters of every fleetd.
func (c *benchCluster) etcdRequests(b *testing.B) float64 {
	b.Helper()
	total := 0.0
	for _, v := range c.requestsByMethod(b) {
		total += v
	}
	return total
}

// cpuSeconds is the user plus system CPU time a process has used.
func cpuSeconds(b *testing.B, p *proc) float64 {
	b.Helper()
	s, err := procfs.ReadStat(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return s.CPUSeconds()
}

// envInt reads a positive integer knob from the environment.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkAPIStart measures units created and started through the API per
// second, until all report launched, on three fleetd (fake unit manager) on
// one embedded etcd, and the etcd requests fleetd sent per started unit.
// FLEETD_BENCH_UNITS sets the number of units (10000).
func BenchmarkAPIStart(b *testing.B) {
	n := envInt(b, "FLEETD_BENCH_UNITS", 10000)
	for i := 0; i < b.N; i++ {
		c := startBenchCluster(b)
		before := c.etcdRequests(b)
		start := time.Now()
		c.launchAll(b, fmt.Sprintf("start%d", i), n, 32)
		submitted := time.Since(start)
		c.waitLaunched(b, n, 10*time.Minute)
		took := time.Since(start)
		requests := c.etcdRequests(b) - before
		b.ReportMetric(float64(n)/took.Seconds(), "units/s")
		b.ReportMetric(float64(n)/submitted.Seconds(), "submits/s")
		b.ReportMetric(requests/float64(n), "etcd-req/unit")
		for _, p := range c.procs {
			p.kill()
		}
	}
}

// BenchmarkIdle measures what three fleetd cost while nothing changes: with
// FLEETD_BENCH_IDLE_UNITS (300) units running, the CPU time of the busier of
// the two plain fleetd, of the one that also hosts the embedded etcd, and the
// etcd requests of all three over FLEETD_BENCH_IDLE_SECONDS (30), by gRPC
// method.
func BenchmarkIdle(b *testing.B) {
	n := envInt(b, "FLEETD_BENCH_IDLE_UNITS", 300)
	window := time.Duration(envInt(b, "FLEETD_BENCH_IDLE_SECONDS", 30)) * time.Second
	for i := 0; i < b.N; i++ {
		c := startBenchCluster(b)
		c.launchAll(b, fmt.Sprintf("idle%d", i), n, 8)
		c.waitLaunched(b, n, 5*time.Minute)
		time.Sleep(2 * time.Second) // let the last state publications and passes finish
		cpu0 := make([]float64, len(c.procs))
		for j, p := range c.procs {
			cpu0[j] = cpuSeconds(b, p)
		}
		byMethod0 := c.requestsByMethod(b)
		time.Sleep(window)
		// The first fleetd also runs the embedded etcd server: reported apart.
		hostCPU, maxCPU := cpuSeconds(b, c.procs[0])-cpu0[0], 0.0
		for j, p := range c.procs[1:] {
			maxCPU = max(maxCPU, cpuSeconds(b, p)-cpu0[j+1])
		}
		byMethod := c.requestsByMethod(b)
		total := 0.0
		var methods []string
		for m, v := range byMethod {
			d := v - byMethod0[m]
			total += d
			if d > 0 {
				methods = append(methods, fmt.Sprintf("%s=%.0f", m, d))
			}
		}
		sort.Strings(methods)
		b.Logf("etcd requests over %v by method: %s", window, strings.Join(methods, " "))
		b.ReportMetric(maxCPU, "cpu-s/fleetd")
		b.ReportMetric(hostCPU, "cpu-s/etcd-host")
		b.ReportMetric(total, "etcd-req")
		for _, p := range c.procs {
			p.kill()
		}
	}
}

// requestsByMethod sums fleet_etcd_requests_total by its method label across
// the three fleetd.
func (c *benchCluster) requestsByMethod(b *testing.B) map[string]float64 {
	b.Helper()
	out := map[string]float64{}
	for _, p := range c.procs {
		for m, v := range scrapeByLabel(b, p, "fleet_etcd_requests_total", "method") {
			out[m] += v
		}
	}
	return out
}

// scrapeByLabel reads one metric family from a fleetd's /metrics by the value
// of one label.
func scrapeByLabel(b *testing.B, p *proc, family, label string) map[string]float64 {
	b.Helper()
	body, err := metricsText(p)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	key := label + `="`
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, family+"{") {
			continue
		}
		i := strings.Index(line, key)
		if i < 0 {
			continue
		}
		rest := line[i+len(key):]
		name := rest[:strings.IndexByte(rest, '"')]
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			b.Fatalf("metric line %q: %v", line, err)
		}
		out[name] += v
	}
	return out
}
