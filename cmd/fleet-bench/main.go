// Command fleet-bench measures fleet on clusters of real processes started
// with cmd/fleet-cluster, each number beside its target: on three machines of
// real systemd user managers, `fleetctl start` of template instances against
// `systemctl --user start` of the same number on the same managers, failover
// after a machine is killed, etcd requests per started unit and the idle
// cost; on many fleetd with the fake unit manager, starting thousands of
// units through the API and losing several machines at once. `make
// bench-cluster` runs it; docs/bench/cluster.md has the method and results.
//
//	fleet-bench -bin /tmp/fleet-bench/bin -dir /tmp/fleet-bench
//
// Sizes come from the environment (BENCH_* variables, see -h).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// knobs are the benchmark sizes, read from the environment.
type knobs struct {
	parts        []string
	sizes        []int
	agentTTL     time.Duration
	idle         time.Duration
	scaleMachine int
	scaleUnits   int
	scaleKill    int
}

// knobHelp documents the environment variables.
const knobHelp = `environment:
  BENCH_PARTS           parts to run: real (3 systemd machines), scale (many fake) (default real,scale)
  BENCH_SIZES           instances per fleetctl start, comma-separated (default 100,300)
  BENCH_AGENT_TTL       fleetd's agent_ttl (default 10s)
  BENCH_IDLE_SECONDS    idle window (default 30)
  BENCH_SCALE_MACHINES  fleetd processes of the scale part (default 100)
  BENCH_SCALE_UNITS     units started in the scale part (default 10000)
  BENCH_SCALE_KILL      machines killed at once in the scale part (default 10)
`

func readKnobs() (knobs, error) {
	k := knobs{parts: []string{"real", "scale"}, sizes: []int{100, 300}, agentTTL: 10 * time.Second, idle: 30 * time.Second,
		scaleMachine: 100, scaleUnits: 10000, scaleKill: 10}
	var errs []error
	num := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive integer", name, v))
			}
			*dst = n
		}
	}
	if v := os.Getenv("BENCH_PARTS"); v != "" {
		k.parts = strings.Split(v, ",")
	}
	if v := os.Getenv("BENCH_SIZES"); v != "" {
		k.sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("BENCH_SIZES=%q: want positive integers", v))
			}
			k.sizes = append(k.sizes, n)
		}
		sort.Ints(k.sizes)
	}
	if v := os.Getenv("BENCH_AGENT_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("BENCH_AGENT_TTL: %w", err))
		}
		k.agentTTL = d
	}
	secs := int(k.idle.Seconds())
	num("BENCH_IDLE_SECONDS", &secs)
	k.idle = time.Duration(secs) * time.Second
	num("BENCH_SCALE_MACHINES", &k.scaleMachine)
	num("BENCH_SCALE_UNITS", &k.scaleUnits)
	num("BENCH_SCALE_KILL", &k.scaleKill)
	if k.scaleKill >= k.scaleMachine {
		errs = append(errs, fmt.Errorf("BENCH_SCALE_KILL=%d: want fewer than the %d machines", k.scaleKill, k.scaleMachine))
	}
	return k, errors.Join(errs...)
}

func main() {
	fs := flag.NewFlagSet("fleet-bench", flag.ExitOnError)
	bin := fs.String("bin", "", "directory holding fleetd, fleetctl and fleet-cluster (required)")
	dir := fs.String("dir", "/tmp/fleet-bench", "where the clusters live while they run")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: fleet-bench -bin DIR [-dir DIR]")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), knobHelp)
	}
	_ = fs.Parse(os.Args[1:])
	k, err := readKnobs()
	if err == nil && *bin == "" {
		err = errors.New("-bin: required")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r := &report{}
	if err := run(ctx, *bin, *dir, k, r, os.Stdout); err != nil {
		r.print(os.Stdout)
		fmt.Fprintln(os.Stderr, "fleet-bench:", err)
		os.Exit(1)
	}
	r.print(os.Stdout)
}

// run runs the parts asked for, adding what they measure to r.
func run(ctx context.Context, bin, dir string, k knobs, r *report, log io.Writer) error {
	for _, part := range k.parts {
		var err error
		switch part {
		case "real":
			err = runReal(ctx, realOptions{bin: bin, dir: dir + "/real", machines: 3, sizes: k.sizes, agentTTL: k.agentTTL,
				idle: k.idle, log: log, pollEvery: 20 * time.Millisecond, activeLimit: 5 * time.Minute}, r)
		case "scale":
			var res scaleResult
			res, err = runScale(ctx, scaleOptions{bin: bin, dir: dir + "/scale", machines: k.scaleMachine, units: k.scaleUnits,
				kill: k.scaleKill, workers: 32, agentTTL: k.agentTTL, idle: k.idle, pollEvery: 250 * time.Millisecond, log: log})
			r.scale(k, res)
		default:
			err = fmt.Errorf("BENCH_PARTS: unknown part %q: want real or scale", part)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runReal runs the benchmarks on three real systemd user managers: the
// starts against the floor, the idle cluster, failover of a machine that is
// not the engine leader; then, on a fresh cluster, failover of the leader.
func runReal(ctx context.Context, o realOptions, r *report) (err error) {
	opts := upOptions{machines: o.machines, etcd: 1, unitManager: "systemd", agentTTL: o.agentTTL.String()}
	defer os.RemoveAll(o.dir + "-units")
	c, err := up(ctx, o.bin, o.dir, opts, o.log)
	defer func() {
		if c != nil {
			err = errors.Join(err, c.down(o.log))
		}
	}()
	if err != nil {
		return err
	}
	var last string
	for i, n := range o.sizes {
		floor, floorCPU, err := floorStart(ctx, o, c, c.Machines, fmt.Sprintf("floor%d", n), n)
		if err != nil {
			return err
		}
		if err := floorStop(ctx, c.Machines, fmt.Sprintf("floor%d", n)); err != nil {
			return err
		}
		last = fmt.Sprintf("fleet%d", n)
		took, perUnit, fleetCPU, err := fleetStart(ctx, o, c, last, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.log, "start %d: floor %v, fleet %v, etcd requests/unit %s\n", n, floor, took, perUnit)
		r.add(fmt.Sprintf("start %d instances: floor (systemctl --user start)", n), fmt.Sprintf("%.2f s", floor.Seconds()), "")
		r.add(fmt.Sprintf("start %d instances: fleetctl start", n), fmt.Sprintf("%.2f s = %.2f× floor", took.Seconds(), took.Seconds()/floor.Seconds()), "≤ 1.5× floor")
		r.add(fmt.Sprintf("start %d: CPU used by the floor", n), floorCPU, "")
		r.add(fmt.Sprintf("start %d: CPU used by fleet", n), fleetCPU, "")
		r.add(fmt.Sprintf("etcd requests per started unit (%d)", n), perUnit, "≤ 3")
		if i < len(o.sizes)-1 {
			if err := c.fleetctl(ctx, o.dir+"-units/"+last, append([]string{"destroy"}, instances(last, n)...)...); err != nil {
				return err
			}
		}
	}
	time.Sleep(2 * time.Second) // the last state publications
	req, cpu, err := idle(ctx, c, c.Machines, o.idle)
	if err != nil {
		return err
	}
	r.idle(fmt.Sprintf("idle, %d units, 3 machines", o.sizes[len(o.sizes)-1]), o.idle, req, cpu)
	lead, err := leader(ctx, c.Machines)
	if err != nil {
		return err
	}
	victim := c.Machines[0]
	for _, m := range c.Machines {
		if m.Name != lead.Name {
			victim = m
		}
	}
	took, moved, err := failover(ctx, o, c, victim, last+"@*")
	if err != nil {
		return err
	}
	r.add(fmt.Sprintf("failover, %s killed (not leader), %d units", victim.Name, moved), fmt.Sprintf("%.2f s (agent_ttl %v)", took.Seconds(), o.agentTTL), fmt.Sprintf("≤ %v", o.agentTTL+time.Second))
	err = c.down(o.log)
	c = nil
	if err != nil {
		return err
	}
	c, err = up(ctx, o.bin, o.dir, opts, o.log)
	if err != nil {
		return err
	}
	n := o.sizes[len(o.sizes)-1]
	if _, _, _, err := fleetStart(ctx, o, c, "lead", n); err != nil {
		return err
	}
	lead, err = leader(ctx, c.Machines)
	if err != nil {
		return err
	}
	took, moved, err = failover(ctx, o, c, lead, "lead@*")
	if err != nil {
		return err
	}
	r.add(fmt.Sprintf("failover, engine leader %s killed, %d units", lead.Name, moved), fmt.Sprintf("%.2f s (agent_ttl %v)", took.Seconds(), o.agentTTL), fmt.Sprintf("≤ %v", o.agentTTL+time.Second))
	return nil
}

// report collects the measurements as table rows.
type report struct{ rows [][3]string }

func (r *report) add(what, got, target string) { r.rows = append(r.rows, [3]string{what, got, target}) }

// idle adds the rows of an idle window.
func (r *report) idle(what string, window time.Duration, req map[string]float64, cpu []float64) {
	var methods []string
	for m, v := range req {
		methods = append(methods, fmt.Sprintf("%s %.0f", m, v))
	}
	sort.Strings(methods)
	maxCPU, mean := 0.0, 0.0
	for _, v := range cpu {
		maxCPU = max(maxCPU, v)
		mean += v / float64(len(cpu))
	}
	r.add(what+fmt.Sprintf(": etcd requests in %v", window), fmt.Sprintf("%.0f (%s)", sum(req), strings.Join(methods, ", ")), "keep-alives only")
	r.add(what+fmt.Sprintf(": CPU per fleetd in %v", window), fmt.Sprintf("max %.2f s, mean %.2f s", maxCPU, mean), "≤ 0.1 s")
}

// scale adds the rows of the scale part.
func (r *report) scale(k knobs, res scaleResult) {
	if res.start == 0 {
		return
	}
	r.add(fmt.Sprintf("scale: %d units through the API on %d fleetd until launched", k.scaleUnits, k.scaleMachine),
		fmt.Sprintf("%.2f s (submitted in %.2f s)", res.start.Seconds(), res.submit.Seconds()), "≤ 10 s")
	r.add("scale: CPU used while starting", res.startCPU, "")
	r.add("scale: etcd requests per started unit", res.reqPerUnit, "≤ 3")
	if res.idleReq != nil {
		r.idle(fmt.Sprintf("scale idle, %d units, %d machines", k.scaleUnits, k.scaleMachine), k.idle, res.idleReq, res.idleCPU)
	}
	if res.failover > 0 {
		r.add(fmt.Sprintf("scale: %d machines killed (leader among them: %v), %d units", k.scaleKill, res.leaderWasKilled, res.moved),
			fmt.Sprintf("%.2f s (agent_ttl %v)", res.failover.Seconds(), k.agentTTL), fmt.Sprintf("≤ %v", k.agentTTL+2*time.Second))
		r.add("scale: CPU used during the failover", res.failoverCPU, "")
	}
}

// print writes the rows as a markdown table.
func (r *report) print(w io.Writer) {
	fmt.Fprintln(w, "\n| measurement | result | target |\n| --- | --- | --- |")
	for _, row := range r.rows {
		fmt.Fprintf(w, "| %s | %s | %s |\n", row[0], row[1], row[2])
	}
}
