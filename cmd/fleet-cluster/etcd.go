package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// startEtcd starts a separate etcd cluster of c.opts.Etcd member processes
// (this program's etcd-member command) and waits until every member is
// healthy.
func (c *cluster) startEtcd(ctx context.Context) error {
	n := c.opts.Etcd
	names, clients, peers := make([]string, n), make([]string, n), make([]string, n)
	initial := make([]string, n)
	hub := ""
	if len(c.state.Netns) > 0 {
		hub = c.state.Netns[0]
	}
	for i := range n {
		var err error
		names[i] = memberName(i)
		if hub != "" {
			// A fresh namespace of its own: every port is free.
			clients[i] = fmt.Sprintf("http://%s1:%d", netnsSubnet, 2379+2*i)
			peers[i] = fmt.Sprintf("http://%s1:%d", netnsSubnet, 2380+2*i)
			initial[i] = names[i] + "=" + peers[i]
			continue
		}
		if clients[i], err = freePort(); err != nil {
			return err
		}
		if peers[i], err = freePort(); err != nil {
			return err
		}
		initial[i] = names[i] + "=" + peers[i]
	}
	c.state.EtcdURLs, c.state.EtcdPeerURLs = clients, peers
	if err := c.state.Save(); err != nil {
		return err
	}
	var procs []clusterstate.Proc
	for i := range n {
		p, err := c.spawnMember(names[i], clients[i], peers[i], strings.Join(initial, ","))
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	return waitFor(ctx, c.opts.Wait, "etcd members healthy", procs, func() error {
		var errs []error
		for _, u := range clients {
			errs = append(errs, healthy(ctx, hubPath(c.state), u))
		}
		return errors.Join(errs...)
	})
}

// spawnMember starts etcd member name (this program's etcd-member command)
// in its cgroup, in the hub namespace when the cluster has one, with its data
// under the cluster's etcd/NAME directory, and records it.
func (c *cluster) spawnMember(name, client, peer, initial string) (clusterstate.Proc, error) {
	dir := filepath.Join(c.opts.Dir, "etcd", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return clusterstate.Proc{}, fmt.Errorf("etcd member %s: %w", name, err)
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	args, err := c.launcherArgs(&env, "etcd/"+name, plainLauncher, c.opts.Self, "etcd-member",
		"-name", name, "-data", filepath.Join(dir, "data"), "-client-url", client, "-peer-url", peer,
		"-initial-cluster", initial)
	if err != nil {
		return clusterstate.Proc{}, err
	}
	hub := ""
	if len(c.state.Netns) > 0 {
		hub = c.state.Netns[0]
	}
	return c.spawn("etcd", name, filepath.Join(dir, "member.log"), env, inNetns(hub, args)...)
}

// restartMember starts again member name of the cluster's separate etcd
// where it is no longer alive (after a crash, or a test that killed it): the
// same data directory, URLs and network namespace, recorded like the first
// start. It waits until the member is healthy, which needs a quorum of the
// members alive with it.
func (c *cluster) restartMember(ctx context.Context, name string) error {
	s := c.state
	i := -1
	for k := range s.EtcdURLs {
		if memberName(k) == name {
			i = k
		}
	}
	switch {
	case slices.ContainsFunc(s.Machines, func(m clusterstate.Machine) bool { return m.EtcdHost }):
		return fmt.Errorf("restart: the cluster's etcd is embedded in a fleetd, it has no member %s", name)
	case i < 0:
		return fmt.Errorf("restart: no etcd member %s in %s (members e1..e%d)", name, c.opts.Dir, len(s.EtcdURLs))
	case len(s.EtcdPeerURLs) != len(s.EtcdURLs):
		return fmt.Errorf("restart: %s records no peer URLs for its etcd members (started by an older fleet-cluster)", c.opts.Dir)
	}
	for _, p := range s.Procs {
		if p.Role == "etcd" && p.Name == name && p.Alive() {
			return nil
		}
	}
	initial := make([]string, len(s.EtcdPeerURLs))
	for k, u := range s.EtcdPeerURLs {
		initial[k] = memberName(k) + "=" + u
	}
	p, err := c.spawnMember(name, s.EtcdURLs[i], s.EtcdPeerURLs[i], strings.Join(initial, ","))
	if err != nil {
		return err
	}
	return waitFor(ctx, c.opts.Wait, "etcd member "+name+" healthy", []clusterstate.Proc{p}, func() error {
		return healthy(ctx, hubPath(s), s.EtcdURLs[i])
	})
}

// memberName names the member at index i of the separate etcd: e1, e2...
func memberName(i int) string { return fmt.Sprintf("e%d", i+1) }

// etcdMember runs one member of a new etcd cluster until SIGTERM or SIGINT.
func etcdMember(args []string) error {
	fs := flag.NewFlagSet("etcd-member", flag.ContinueOnError)
	name := fs.String("name", "", "member name")
	data := fs.String("data", "", "data directory")
	client := fs.String("client-url", "", "URL to serve clients on")
	peer := fs.String("peer-url", "", "URL to serve peers on")
	initial := fs.String("initial-cluster", "", "name=peer-url,... of every member")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *data == "" || *client == "" || *peer == "" || *initial == "" {
		return errors.New("etcd-member: -name, -data, -client-url, -peer-url and -initial-cluster are all required")
	}
	cu, err := url.Parse(*client)
	if err != nil {
		return fmt.Errorf("etcd-member: -client-url: %w", err)
	}
	pu, err := url.Parse(*peer)
	if err != nil {
		return fmt.Errorf("etcd-member: -peer-url: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = *name, *data
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = *initial
	cfg.InitialClusterToken = "fleet-cluster"
	cfg.LogLevel, cfg.LogOutputs = "warn", []string{embed.StdErrLogOutput}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcd-member %s: %w", *name, err)
	}
	defer srv.Close()
	select {
	case <-srv.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd-member %s: serving clients on %s\n", *name, *client)
	case err := <-srv.Err():
		return fmt.Errorf("etcd-member %s: %w", *name, err)
	case <-ctx.Done():
		return nil
	}
	select {
	case err := <-srv.Err():
		return fmt.Errorf("etcd-member %s: %w", *name, err)
	case <-ctx.Done():
		return nil
	}
}
