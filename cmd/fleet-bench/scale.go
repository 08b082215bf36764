package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/core"
)

// scaleOptions configures the benchmark of many fleetd with the fake unit
// manager.
type scaleOptions struct {
	bin, dir  string
	machines  int
	units     int
	kill      int
	workers   int
	agentTTL  time.Duration
	idle      time.Duration
	pollEvery time.Duration
	log       io.Writer
}

// observer reads the cluster's state straight from etcd, so that its polling
// is not counted among fleetd's requests.
type observer struct{ reg *etcd.Registry }

// snapshot returns each unit's placements and whether it is launched.
func (o observer) snapshot(ctx context.Context) (map[string][]core.Placement, map[string]bool, error) {
	ps, err := o.reg.Placements(ctx)
	if err != nil {
		return nil, nil, err
	}
	ss, err := o.reg.UnitStates(ctx)
	if err != nil {
		return nil, nil, err
	}
	byUnit := map[string][]core.Placement{}
	for _, p := range ps {
		byUnit[p.Unit] = append(byUnit[p.Unit], p)
	}
	launched := map[string]bool{}
	for u, s := range core.CurrentStates(ps, ss) {
		launched[u] = s == core.Launched
	}
	return byUnit, launched, nil
}

// createUnits creates n launched units through the machines' APIs, spread
// over them, with workers requests in flight.
func createUnits(ctx context.Context, ms []machine, n, workers int) error {
	clients := make([]*api.Client, len(ms))
	for i, m := range ms {
		cl, err := api.NewClient(api.ClientConfig{Endpoint: "unix://" + m.Socket, Timeout: 60 * time.Second})
		if err != nil {
			return err
		}
		defer cl.Close()
		clients[i] = cl
	}
	names := make(chan int)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range names {
				if errs[w] != nil {
					continue
				}
				err := clients[i%len(clients)].CreateUnit(ctx, api.Unit{Name: fmt.Sprintf("scale-%05d.service", i), DesiredState: "launched",
					Options: []api.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/sleep infinity"}}})
				if err != nil {
					errs[w] = fmt.Errorf("create unit %d: %w", i, err)
				}
			}
		})
	}
	for i := range n {
		names <- i
	}
	close(names)
	wg.Wait()
	return errors.Join(errs...)
}

// scaleResult is what the scale benchmark measured.
type scaleResult struct {
	start, submit   time.Duration
	reqPerUnit      string
	idleReq         map[string]float64
	idleCPU         []float64 // per fleetd
	startCPU        string    // by role, while starting
	failoverCPU     string    // by role, during the failover
	failover        time.Duration
	moved           int
	leaderWasKilled bool
}

// runScale starts o.machines fleetd with the fake unit manager on one
// separate etcd member, starts o.units units through the API, measures the
// idle cluster, then kills o.kill machines at once.
func runScale(ctx context.Context, o scaleOptions) (res scaleResult, err error) {
	c, err := up(ctx, o.bin, o.dir, upOptions{machines: o.machines, etcd: 1, unitManager: "fake", agentTTL: o.agentTTL.String()}, o.log)
	if c != nil {
		defer func() { err = errors.Join(err, c.down(o.log)) }()
	}
	if err != nil {
		return res, err
	}
	cli, err := etcd.Dial(ctx, etcd.ClientConfig{Endpoints: c.EtcdURLs})
	if err != nil {
		return res, err
	}
	defer cli.Close()
	reg, err := etcd.New(cli)
	if err != nil {
		return res, err
	}
	obs := observer{reg}
	all := c.Machines
	before, err := etcdRequests(ctx, all)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(o.log, "scale: starting %d units on %d machines\n", o.units, o.machines)
	cpu0 := c.cpuByProc()
	start := time.Now()
	if err := createUnits(ctx, all, o.units, o.workers); err != nil {
		return res, err
	}
	res.submit = time.Since(start)
	want := o.units + 1 // and warmup.service
	err = poll(ctx, 10*time.Minute, o.pollEvery, "scale units launched", func() (bool, error) {
		_, l, err := obs.snapshot(ctx)
		n := 0
		for _, ok := range l {
			if ok {
				n++
			}
		}
		return n == want, err
	})
	res.start = time.Since(start)
	res.startCPU = c.cpuSpent(cpu0)
	if err != nil {
		return res, err
	}
	after, err := etcdRequests(ctx, all)
	if err != nil {
		return res, err
	}
	res.reqPerUnit = perUnit(before, after, o.units)
	fmt.Fprintf(o.log, "scale: launched in %v; idle for %v\n", res.start, o.idle)
	time.Sleep(2 * time.Second) // the last state publications
	res.idleReq, res.idleCPU, err = idle(ctx, c, all, o.idle)
	if err != nil {
		return res, err
	}
	lead, err := leader(ctx, all)
	if err != nil {
		return res, err
	}
	victims := all[len(all)-o.kill:]
	dead := map[string]bool{}
	for _, m := range victims {
		dead[m.ID] = true
		res.leaderWasKilled = res.leaderWasKilled || m.Name == lead.Name
	}
	placed, _, err := obs.snapshot(ctx)
	if err != nil {
		return res, err
	}
	var moving []string
	for u, ps := range placed {
		if slices.ContainsFunc(ps, func(p core.Placement) bool { return dead[p.Machine] }) {
			moving = append(moving, u)
		}
	}
	res.moved = len(moving)
	fmt.Fprintf(o.log, "scale: killing %d machines hosting %d units\n", len(victims), len(moving))
	cpu0 = c.cpuByProc()
	killed := time.Now()
	for _, m := range victims {
		p, ok := c.procOf("fleetd", m.Name)
		if !ok {
			return res, fmt.Errorf("no fleetd recorded for %s", m.Name)
		}
		if err := kill(p); err != nil {
			return res, err
		}
	}
	var pending []string
	err = poll(ctx, 3*o.agentTTL+60*time.Second, o.pollEvery, "killed machines' units launched elsewhere", func() (bool, error) {
		placed, l, err := obs.snapshot(ctx)
		pending = pending[:0]
		for _, u := range moving {
			if !l[u] || slices.ContainsFunc(placed[u], func(p core.Placement) bool { return dead[p.Machine] }) {
				pending = append(pending, fmt.Sprintf("%s (launched %v, placements %v)", u, l[u], placed[u]))
			}
		}
		return len(pending) == 0, err
	})
	res.failover = time.Since(killed)
	res.failoverCPU = c.cpuSpent(cpu0)
	if err != nil {
		return res, fmt.Errorf("%w: %d of %d units pending, such as %s", err, len(pending), len(moving), pending[0])
	}
	return res, nil
}
