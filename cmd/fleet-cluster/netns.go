package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// With up -netns every machine lives in its own network namespace, joined
// by a veth pair to a bridge in a hub namespace that holds the etcd members:
// taking a machine's link down in the hub is a real partition. Only
// namespaces made here are touched; they are named after the cluster
// directory, recorded before they are made, and deleted by down.
const (
	netnsSubnet = "10.213.0." // the hub is .1, machine N is .(10+N)
	hubBridge   = "br0"
)

// netnsPath is where ip netns keeps a named namespace.
func netnsPath(name string) string { return "/run/netns/" + name }

// netnsPrefix names the cluster's namespaces: two clusters never share one.
func netnsPrefix(clusterDir string) string {
	h := fnv.New32a()
	h.Write([]byte(clusterDir))
	return fmt.Sprintf("fc%08x", h.Sum32())
}

// ipCmd runs ip with args and reports its output on failure.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// addNetns records and makes a network namespace with its loopback up.
func (c *cluster) addNetns(name string) error {
	c.state.Netns = append(c.state.Netns, name)
	if err := c.state.Save(); err != nil {
		return err
	}
	if err := ipCmd("netns", "add", name); err != nil {
		return err
	}
	return ipCmd("-n", name, "link", "set", "lo", "up")
}

// makeHub makes the hub namespace with its bridge; the etcd members listen
// on its address.
func (c *cluster) makeHub() error {
	hub := netnsPrefix(c.opts.Dir) + "-hub"
	if err := c.addNetns(hub); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", hub, "link", "add", hubBridge, "type", "bridge"},
		{"-n", hub, "addr", "add", netnsSubnet + "1/24", "dev", hubBridge},
		{"-n", hub, "link", "set", hubBridge, "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return err
		}
	}
	return nil
}

// joinHub makes machine n's namespace and links it to the hub's bridge.
func (c *cluster) joinHub(m *clusterstate.Machine, n int) error {
	hub := c.state.Netns[0]
	m.Netns, m.Link = netnsPrefix(c.opts.Dir)+"-"+m.Name, fmt.Sprintf("h%d", n)
	if err := c.addNetns(m.Netns); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", hub, "link", "add", m.Link, "type", "veth", "peer", "name", "eth0", "netns", m.Netns},
		{"-n", hub, "link", "set", m.Link, "master", hubBridge, "up"},
		{"-n", m.Netns, "addr", "add", fmt.Sprintf("%s%d/24", netnsSubnet, 10+n), "dev", "eth0"},
		{"-n", m.Netns, "link", "set", "eth0", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return err
		}
	}
	return nil
}

// hubPath is the path of the cluster's hub namespace, or "" without one.
func hubPath(s *clusterstate.State) string {
	if len(s.Netns) == 0 {
		return ""
	}
	return netnsPath(s.Netns[0])
}

// inNetns runs args in the network namespace name (none: as they are). The
// PID stays the program's: nsenter execs it.
func inNetns(name string, args []string) []string {
	if name == "" {
		return args
	}
	return append([]string{"nsenter", "--net=" + netnsPath(name), "--"}, args...)
}

// removeNetns deletes the recorded namespaces (their links go with them);
// one already gone is not an error.
func removeNetns(names []string) error {
	var errs []error
	for _, n := range names {
		if _, err := os.Stat(netnsPath(n)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		errs = append(errs, ipCmd("netns", "delete", n))
	}
	return errors.Join(errs...)
}

// dialerIn returns a dial function whose sockets live in the network
// namespace at path ("": this process's own): the tool reaches the hub's etcd
// from outside it.
func dialerIn(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if path == "" {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		type result struct {
			conn net.Conn
			err  error
		}
		done := make(chan result, 1)
		// A goroutine of its own, locked to its thread and never unlocked: if
		// switching back failed, the thread ends with it.
		go func() {
			runtime.LockOSThread()
			conn, err := dialOnThread(ctx, path, network, addr)
			done <- result{conn, err}
			if err == nil || !errors.Is(err, errSetnsBack) {
				runtime.UnlockOSThread()
			}
		}()
		r := <-done
		return r.conn, r.err
	}
}

// errSetnsBack marks a thread that could not return to its namespace.
var errSetnsBack = errors.New("cannot return to the original network namespace")

// dialOnThread switches the locked thread into the namespace, creates the
// connection there (a socket keeps the namespace it was made in) and
// switches back.
func dialOnThread(ctx context.Context, path, network, addr string) (net.Conn, error) {
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, err
	}
	defer own.Close()
	target, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("enter %s: %w", path, err)
	}
	conn, derr := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("%w: %w", errSetnsBack, err)
	}
	return conn, derr
}
