// Command fleet-cluster runs a local fleet cluster of real processes on one
// host: each machine a private mount namespace with its own /run,
// /etc/machine-id and cgroup subtree, its own systemd user manager and its own
// fleetd, all sharing one etcd. `make cluster` and `make cluster-down` run it
// through scripts/local-cluster.sh; docs/cluster.md describes it.
//
//	fleet-cluster up -dir /tmp/fleet-cluster -machines 3 -fleetd bin/fleetd -examples examples/units
//	fleet-cluster status -dir /tmp/fleet-cluster
//	fleet-cluster restart -dir /tmp/fleet-cluster -machine m2 -fleetd bin/fleetd
//	fleet-cluster restart -dir /tmp/fleet-cluster -etcd e2
//	fleet-cluster down -dir /tmp/fleet-cluster
//
// Everything up starts is recorded (PID and start time) in the directory's
// state.json before it is waited for; down stops exactly that.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// defaultDir is where a cluster lives unless -dir says otherwise.
const defaultDir = "/tmp/fleet-cluster"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the program with its arguments and streams; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: fleet-cluster up|status|restart|down [flags] (-h for each)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "up":
		err = runUp(ctx, args[1:], stdout, stderr)
	case "down":
		err = runDown(args[1:], stdout, stderr)
	case "status":
		err = runStatus(ctx, args[1:], stdout, stderr)
	case "restart":
		err = runRestart(ctx, args[1:], stderr)
	case "etcd-member":
		err = etcdMember(args[1:])
	default:
		err = fmt.Errorf("unknown command %q: want up, status, restart or down", args[0])
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintln(stderr, "fleet-cluster:", err)
		return 1
	}
}

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := upOptions{Out: stdout}
	fs.StringVar(&o.Dir, "dir", defaultDir, "the cluster's directory (state, machines, logs)")
	fs.IntVar(&o.Machines, "machines", 3, "number of machines")
	fs.IntVar(&o.Etcd, "etcd", 0, "0: etcd embedded in the first fleetd; N (odd): a separate etcd cluster of N member processes")
	fs.StringVar(&o.Fleetd, "fleetd", "", "the fleetd binary (required)")
	fs.StringVar(&o.Fleetctl, "fleetctl", "", "the fleetctl binary (required)")
	fs.StringVar(&o.Examples, "examples", "examples/units", "directory of the example units to start")
	fs.IntVar(&o.Instances, "instances", 3, "instances started of each template unit")
	fs.StringVar(&o.UnitManager, "unit-manager", managerAuto, "auto (systemd where it can run, else fake), systemd or fake")
	fs.StringVar(&o.Systemd, "systemd", "/lib/systemd/systemd", "the systemd binary")
	fs.StringVar(&o.AgentTTL, "agent-ttl", "", "fleetd's agent_ttl (fleetd's default if empty)")
	fs.DurationVar(&o.Wait, "wait", 60*time.Second, "bound of each wait: a process ready, every machine listed, the units running")
	fs.Var((*fleetdOptions)(&o.FleetdOptions), "fleetd-option", "key=value added to every machine's fleet.conf (repeatable; kept by restart), e.g. agent_fence_grace=2s")
	fs.BoolVar(&o.Netns, "netns", false, "each machine in its own network namespace, linked to a hub namespace holding etcd (needs -etcd, root)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o.Self = self
	return up(ctx, o)
}

func runDown(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultDir, "the cluster's directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return down(*dir, stdout)
}

// runStatus prints the machines and units of a running cluster.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultDir, "the cluster's directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := clusterstate.Load(*dir)
	if err != nil {
		return fmt.Errorf("no cluster in %s: %w", *dir, err)
	}
	if len(s.Machines) == 0 {
		return fmt.Errorf("the cluster in %s has no machine", *dir)
	}
	for _, p := range s.Procs {
		state := "running"
		if !p.Alive() {
			state = "GONE"
		}
		fmt.Fprintf(stdout, "%-8s %-4s pid %-8d %s\n", p.Role, p.Name, p.PID, state)
	}
	fmt.Fprintln(stdout)
	endpoint := "unix://" + s.Machines[0].Socket
	if err := fleetctl(ctx, s.Fleetctl, endpoint, stdout, "list-machines"); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return fleetctl(ctx, s.Fleetctl, endpoint, stdout, "list-units")
}
