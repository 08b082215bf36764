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
		names[i] = fmt.Sprintf("e%d", i+1)
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
	c.state.EtcdURLs = clients
	if err := c.state.Save(); err != nil {
		return err
	}
	var procs []clusterstate.Proc
	for i := range n {
		dir := filepath.Join(c.opts.Dir, "etcd", names[i])
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("etcd member %s: %w", names[i], err)
		}
		env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
		args, err := c.launcherArgs(&env, "etcd/"+names[i], plainLauncher, c.opts.Self, "etcd-member",
			"-name", names[i], "-data", filepath.Join(dir, "data"), "-client-url", clients[i], "-peer-url", peers[i],
			"-initial-cluster", strings.Join(initial, ","))
		if err != nil {
			return err
		}
		p, err := c.spawn("etcd", names[i], filepath.Join(dir, "member.log"), env, inNetns(hub, args)...)
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
