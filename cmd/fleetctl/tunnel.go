package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fleet-rebuild/fleet/internal/fleetssh"
)

// tunnel carries the API or etcd traffic over SSH through --tunnel.
type tunnel struct {
	ssh *fleetssh.Client
	// For the API: a private unix socket whose connections are forwarded.
	dir      string
	listener net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool // local connections being forwarded
}

// openTunnel connects to the --tunnel host.
func (a *app) openTunnel(ctx context.Context) (*tunnel, error) {
	c, err := fleetssh.Dial(ctx, a.sshConfig(false), fleetssh.WithPort(a.global.tunnel, 22))
	if err != nil {
		return nil, fmt.Errorf("--tunnel %s: %w", a.global.tunnel, err)
	}
	return &tunnel{ssh: c}, nil
}

// dialer opens etcd's connections from the tunnel host.
func (t *tunnel) dialer(ctx context.Context, addr string) (net.Conn, error) {
	return t.ssh.DialRemote(ctx, addr)
}

// apiEndpoint forwards the API at endpoint through the tunnel and returns
// the local endpoint to use instead, and for https the server name to
// verify. A TCP endpoint is reached from the tunnel host (direct-tcpip)
// through a listener on 127.0.0.1; a unix one by running "fleetctl
// fd-forward <socket>" there (fleetctl must be on the remote PATH) through
// a private unix socket. The API client takes no dialer, hence the local
// listeners.
func (t *tunnel) apiEndpoint(endpoint string) (local, serverName string, err error) {
	raw, _, _ := strings.Cut(endpoint, ",")
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	var open func(ctx context.Context) (io.ReadWriteCloser, error)
	switch u.Scheme {
	case "unix", "file":
		if u.Host != "" || u.Path == "" {
			return endpoint, "", nil // the API client explains what is wrong
		}
		command := fleetssh.Quote("fleetctl", "fd-forward", u.Path)
		open = func(context.Context) (io.ReadWriteCloser, error) { return t.ssh.Pipe(command) }
		if t.dir, err = os.MkdirTemp("", "fleetctl-tunnel-"); err != nil {
			return "", "", err
		}
		sock := filepath.Join(t.dir, "api.sock")
		if t.listener, err = net.Listen("unix", sock); err != nil {
			return "", "", err
		}
		local = "unix://" + sock
	case "http", "https":
		port := 80
		if u.Scheme == "https" {
			port, serverName = 443, u.Hostname()
		}
		addr := fleetssh.WithPort(u.Host, port)
		open = func(ctx context.Context) (io.ReadWriteCloser, error) { return t.ssh.DialRemote(ctx, addr) }
		if t.listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "", "", err
		}
		local = u.Scheme + "://" + t.listener.Addr().String() + u.EscapedPath()
	default:
		return endpoint, "", nil
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.serve(open)
	}()
	return local, serverName, nil
}

// serve forwards each local connection until the listener closes.
func (t *tunnel) serve(open func(ctx context.Context) (io.ReadWriteCloser, error)) {
	for {
		local, err := t.listener.Accept()
		if err != nil {
			return
		}
		t.mu.Lock()
		if t.conns == nil {
			t.conns = map[net.Conn]bool{}
		}
		t.conns[local] = true
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer func() {
				t.mu.Lock()
				delete(t.conns, local)
				t.mu.Unlock()
				local.Close()
			}()
			remote, err := open(context.Background())
			if err != nil {
				return
			}
			defer remote.Close()
			splice(local, remote)
		}()
	}
}

// splice copies both ways until both directions end or one side fails.
func splice(local net.Conn, remote io.ReadWriteCloser) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(remote, local)
		if cw, ok := remote.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(local, remote)
	if uc, ok := local.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	<-done
}

// Close stops forwarding and closes the SSH connection.
func (t *tunnel) Close() error {
	var errs []error
	if t.listener != nil {
		errs = append(errs, t.listener.Close())
	}
	errs = append(errs, t.ssh.Close())
	t.mu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	if t.dir != "" {
		errs = append(errs, os.RemoveAll(t.dir))
	}
	return errors.Join(errs...)
}
