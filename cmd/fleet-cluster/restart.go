package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// runRestart parses the flags of restart and runs it.
func runRestart(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("restart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := upOptions{}
	name := fs.String("machine", "", "the machine to restart (its manager and fleetd)")
	member := fs.String("etcd", "", "the member of the separate etcd to restart (e1, e2...), instead of a machine")
	fs.StringVar(&o.Dir, "dir", defaultDir, "the cluster's directory")
	fs.StringVar(&o.Fleetd, "fleetd", "", "the fleetd binary (required)")
	fs.StringVar(&o.Systemd, "systemd", "/lib/systemd/systemd", "the systemd binary")
	fs.StringVar(&o.AgentTTL, "agent-ttl", "", "fleetd's agent_ttl (fleetd's default if empty)")
	fs.DurationVar(&o.Wait, "wait", 60*time.Second, "bound of the wait for each process to be ready")
	fs.DurationVar(&o.ClockAhead, "clock-ahead", 0, "run fleetd in a time namespace whose monotonic and boot-time clocks are this far ahead of the host's (whole seconds)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	o.Dir = dir
	switch {
	case (*name == "") == (*member == ""):
		return errors.New("restart: one of -machine and -etcd is required")
	case *member != "":
		return restartEtcd(ctx, o, *member)
	case o.Fleetd == "":
		return errors.New("restart: -fleetd is required with -machine")
	}
	if o.ClockAhead < 0 || o.ClockAhead%time.Second != 0 {
		return fmt.Errorf("restart: -clock-ahead %v: want whole seconds, not negative", o.ClockAhead)
	}
	return restartMachine(ctx, o, *name)
}

// restartEtcd starts member name of the cluster's separate etcd again where
// it is no longer alive, and waits until it is healthy.
func restartEtcd(ctx context.Context, o upOptions, name string) error {
	s, err := clusterstate.Load(o.Dir)
	if err != nil {
		return fmt.Errorf("no cluster in %s: %w", o.Dir, err)
	}
	if o.Self, err = os.Executable(); err != nil {
		return err
	}
	c := &cluster{opts: o, state: s}
	return c.restartMember(ctx, name)
}

// restartMachine starts again the systemd manager and the fleetd of a machine
// of a running cluster where they are no longer alive (after a crash, or a
// test that killed them), and records them. A machine whose fleetd embeds the
// cluster's etcd gets it back with the same data (under its data_dir) and the
// same client and peer URLs, read back from its fleet.conf.
func restartMachine(ctx context.Context, o upOptions, name string) error {
	s, err := clusterstate.Load(o.Dir)
	if err != nil {
		return fmt.Errorf("no cluster in %s: %w", o.Dir, err)
	}
	c := &cluster{opts: o, state: s}
	var m *clusterstate.Machine
	for i := range s.Machines {
		if s.Machines[i].Name == name {
			m = &s.Machines[i]
		}
	}
	if m == nil {
		return fmt.Errorf("restart: no machine %s in %s", name, o.Dir)
	}
	conf := filepath.Join(m.Dir, "fleet.conf")
	if c.opts.FleetdOptions, err = keptFleetdOptions(conf); err != nil {
		return err
	}
	var mgr, fleetd *clusterstate.Proc
	for i, p := range s.Procs {
		if p.Name == name && p.Alive() {
			switch p.Role {
			case "manager":
				mgr = &s.Procs[i]
			case "fleetd":
				fleetd = &s.Procs[i]
			}
		}
	}
	managers := map[string]clusterstate.Proc{}
	if s.UnitManager == managerSystemd {
		if mgr == nil {
			p, err := c.startManager(ctx, *m)
			if err != nil {
				return err
			}
			mgr = &p
		}
		managers[name] = *mgr
	}
	if fleetd != nil {
		return nil
	}
	if m.EtcdHost {
		if c.embeddedPeer, err = embeddedEtcdPeer(ctx, conf, s.EtcdURLs, o.Wait); err != nil {
			return err
		}
	}
	return c.startFleetd(ctx, *m, managers)
}

// embeddedEtcdPeer reads back from the fleet.conf at path the URLs of the
// etcd embedded in that machine's fleetd, checks that its client URL is the
// one every other machine lists (clients), and waits up to limit until both
// ports are free (a fleetd just killed may hold them a moment longer; another
// program may have taken one while fleetd was down): it returns the peer URL
// to serve again.
func embeddedEtcdPeer(ctx context.Context, path string, clients []string, limit time.Duration) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("restart: embedded etcd: %w", err)
	}
	var client, peer string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "embedded_etcd_client_url="); ok {
			client = v
		}
		if v, ok := strings.CutPrefix(line, "embedded_etcd_peer_url="); ok {
			peer = v
		}
	}
	switch {
	case len(clients) != 1:
		return "", fmt.Errorf("restart: %s: the cluster records etcd client URLs %v, want the embedded one only", path, clients)
	case client != clients[0]:
		return "", fmt.Errorf("restart: %s: embedded_etcd_client_url %q, but the other machines use %s", path, client, clients[0])
	case peer == "":
		return "", fmt.Errorf("restart: %s: no embedded_etcd_peer_url", path)
	}
	err = waitFor(ctx, limit, "restart: the embedded etcd's ports free", nil, func() error {
		for _, u := range [][2]string{{"embedded_etcd_client_url", client}, {"embedded_etcd_peer_url", peer}} {
			if err := portFree(u[1]); err != nil {
				return fmt.Errorf("%s %s of %s: %w", u[0], u[1], path, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%w; free that port, or bring the cluster up again", err)
	}
	return peer, nil
}

// portFree fails when the loopback port of rawURL cannot be listened on.
func portFree(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		return fmt.Errorf("port taken meanwhile: %w", err)
	}
	return l.Close()
}
