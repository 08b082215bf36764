package daemon

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/fleet-rebuild/fleet/core"
)

// metrics are one fleetd's Prometheus metrics, on a registry of its own (never
// the global one), fed by the driver's Observer, the API's hook and a gRPC
// interceptor on the etcd client.
type metrics struct {
	reg *prometheus.Registry

	enginePasses   *prometheus.CounterVec
	enginePassTime prometheus.Histogram
	decisions      *prometheus.CounterVec
	leader         prometheus.Gauge
	leaderSince    prometheus.Gauge
	units          prometheus.Gauge
	placements     prometheus.Gauge
	unplaceable    prometheus.Gauge
	agentPasses    *prometheus.CounterVec
	agentPassTime  prometheus.Histogram
	tasks          *prometheus.CounterVec
	taskFailures   *prometheus.CounterVec
	machineUnits   prometheus.Gauge
	fenced         prometheus.Gauge
	renewals       *prometheus.CounterVec
	etcdRequests   *prometheus.CounterVec
	apiRequests    *prometheus.CounterVec
	apiTime        *prometheus.HistogramVec

	mu       sync.Mutex
	isLeader bool
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fleet", Name: name, Help: help}, labels)
		f(v)
		return v
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "fleet", Name: name, Help: help})
		f(g)
		return g
	}
	hist := func(name, help string) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "fleet", Name: name, Help: help, Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)})
		f(h)
		return h
	}
	m.enginePasses = counter("engine_passes_total", "Engine passes by kind (full: read and plan; renew: lease only) and result.", "kind", "result")
	m.enginePassTime = hist("engine_pass_duration_seconds", "Duration of full engine passes.")
	m.decisions = counter("engine_decisions_total", "Schedule decisions written, by kind.", "kind")
	m.leader = gauge("engine_leader", "1 while this machine's engine holds the leadership lease.")
	m.leaderSince = gauge("engine_leader_start_time_seconds", "Unix time this engine last became leader.")
	m.units = gauge("engine_units", "Units in the cluster, as the leader last read them.")
	m.placements = gauge("engine_placements", "Placements in the cluster, as the leader last read them.")
	m.unplaceable = gauge("engine_unplaceable_units", "Units that want to run but fit on no machine.")
	m.agentPasses = counter("agent_passes_total", "Agent passes by result.", "result")
	m.agentPassTime = hist("agent_pass_duration_seconds", "Duration of agent passes.")
	m.tasks = counter("agent_tasks_total", "Agent tasks run on systemd, by kind.", "kind")
	m.taskFailures = counter("agent_task_failures_total", "Agent tasks that failed, by kind.", "kind")
	m.machineUnits = gauge("agent_units", "fleet's units on this machine.")
	m.fenced = gauge("agent_fenced", "1 while this machine's agent is fenced: its presence was not renewed for agent_fence_grace and it stopped its units.")
	m.renewals = counter("presence_renewals_total", "Presence renewals by result.", "result")
	m.etcdRequests = counter("etcd_requests_total", "Requests this fleetd sent to etcd, by gRPC method.", "method")
	m.apiRequests = counter("api_requests_total", "HTTP API requests by route, method and status code.", "route", "method", "code")
	m.apiTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "fleet", Name: "api_request_duration_seconds", Help: "HTTP API request durations by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"route"})
	f(m.apiTime)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchSkipped exports the count of registry values this version could not
// read (skipped in listings, each logged once with its key).
func (m *metrics) watchSkipped(skipped func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "fleet", Name: "registry_skipped_values_total",
		Help: "Registry values skipped in listings because this version cannot read them."}, func() float64 { return float64(skipped()) }))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// EnginePass implements driver.Observer.
func (m *metrics) EnginePass(full bool, res core.EngineResult, err error, took time.Duration) {
	kind := "renew"
	if full {
		kind = "full"
		m.enginePassTime.Observe(took.Seconds())
	}
	m.enginePasses.WithLabelValues(kind, result(err)).Inc()
	m.mu.Lock()
	became := res.Leader && !m.isLeader
	m.isLeader = res.Leader
	m.mu.Unlock()
	if became {
		m.leaderSince.Set(float64(time.Now().Unix()))
	}
	if res.Leader {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
	for _, d := range res.Decisions {
		m.decisions.WithLabelValues(d.Kind.String()).Inc()
	}
	if full && res.Leader && err == nil {
		m.units.Set(float64(res.Units))
		m.placements.Set(float64(res.Placements))
		m.unplaceable.Set(float64(len(res.Unplaceable)))
	}
}

// AgentPass implements driver.Observer.
func (m *metrics) AgentPass(res core.AgentResult, err error, took time.Duration) {
	m.agentPasses.WithLabelValues(result(err)).Inc()
	m.agentPassTime.Observe(took.Seconds())
	for _, t := range res.Tasks {
		m.tasks.WithLabelValues(t.Kind.String()).Inc()
	}
	for _, f := range res.Failures {
		m.taskFailures.WithLabelValues(f.Task.Kind.String()).Inc()
	}
	if err == nil {
		m.machineUnits.Set(float64(res.Units))
	}
	fenced := 0.0
	if res.Fenced {
		fenced = 1
	}
	m.fenced.Set(fenced)
}

// Heartbeat implements driver.Observer.
func (m *metrics) Heartbeat(err error) { m.renewals.WithLabelValues(result(err)).Inc() }

// observeAPI is the API's per-request hook.
func (m *metrics) observeAPI(route, method string, code int, d time.Duration) {
	m.apiRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.apiTime.WithLabelValues(route).Observe(d.Seconds())
}

// etcdInterceptors count every request to etcd, unary and streaming (a watch
// or keep-alive stream counts once when opened; keep-alive messages on it are
// counted by lease renewals).
func (m *metrics) etcdInterceptors() []grpc.DialOption {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		m.etcdRequests.WithLabelValues(method).Inc()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		m.etcdRequests.WithLabelValues(method).Inc()
		return streamer(ctx, desc, cc, method, opts...)
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

// errStopped is returned by calls on a stopped daemon.
var errStopped = errors.New("fleetd: stopped")
