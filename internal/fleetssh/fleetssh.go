// Package fleetssh is how fleetctl reaches other machines: SSH with keys from
// ssh-agent only, host keys checked against a known-hosts file with trust on
// first use, optionally through a jump host (--tunnel).
//
//	c, err := fleetssh.Dial(ctx, cfg, "10.0.0.2:22")
//	...
//	defer c.Close()
//	code, err := c.Run(fleetssh.Quote("systemctl", "status", "-l", "web.service"), os.Stdin, os.Stdout, os.Stderr)
package fleetssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Config says how to connect.
type Config struct {
	// User is the remote user (--ssh-username).
	User string
	// Timeout bounds the connection and handshake of each hop (--ssh-timeout).
	Timeout time.Duration
	// AgentSocket is ssh-agent's socket (SSH_AUTH_SOCK); required.
	AgentSocket string
	// Tunnel, if set, is a jump host, host[:port] (22 if no port).
	Tunnel string
	// HostKeys checks the remote host keys; nil accepts any key (strict
	// checking off).
	HostKeys *KnownHosts
}

// Client is a connection to one machine, possibly through a jump host.
type Client struct {
	conn  *ssh.Client
	jump  *ssh.Client // nil without a tunnel
	agent net.Conn
	keys  agent.ExtendedAgent
}

// Dial connects to addr (host:port) as cfg says.
func Dial(ctx context.Context, cfg Config, addr string) (*Client, error) {
	if cfg.AgentSocket == "" {
		return nil, errors.New("SSH_AUTH_SOCK environment variable is not set: start ssh-agent and add your key (ssh-add); fleetctl authenticates only through ssh-agent")
	}
	var d net.Dialer
	ac, err := d.DialContext(ctx, "unix", cfg.AgentSocket)
	if err != nil {
		return nil, fmt.Errorf("connecting to ssh-agent at %s: %w", cfg.AgentSocket, err)
	}
	c := &Client{agent: ac, keys: agent.NewClient(ac)}
	if cfg.Tunnel != "" {
		if c.jump, err = c.hop(ctx, cfg, nil, WithPort(cfg.Tunnel, 22)); err != nil {
			c.Close()
			return nil, fmt.Errorf("tunnel %s: %w", cfg.Tunnel, err)
		}
	}
	if c.conn, err = c.hop(ctx, cfg, c.jump, addr); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// WithPort appends ":port" to an address without a port.
func WithPort(hostport string, port int) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(hostport, strconv.Itoa(port))
}

// hop opens one SSH connection to addr, directly or through via.
func (c *Client) hop(ctx context.Context, cfg Config, via *ssh.Client, addr string) (*ssh.Client, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	hostKey := ssh.InsecureIgnoreHostKey() //nolint:gosec // strict host key checking is off by request
	if cfg.HostKeys != nil {
		hostKey = cfg.HostKeys.Callback
	}
	conf := &ssh.ClientConfig{
		User:            cfg.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeysCallback(c.keys.Signers)},
		HostKeyCallback: hostKey,
		Timeout:         timeout,
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if via != nil {
		conn, err = via.DialContext(dctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	// The handshake, a host-key prompt included, is bounded by the timeout
	// only up to the prompt's question: the deadline is cleared once done.
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if cfg.HostKeys != nil {
		cfg.HostKeys.beforePrompt = func() { _ = conn.SetDeadline(time.Time{}) }
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, conf)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("SSH to %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// Close closes every connection.
func (c *Client) Close() error {
	var errs []error
	for _, cl := range []*ssh.Client{c.conn, c.jump} {
		if cl != nil {
			errs = append(errs, cl.Close())
		}
	}
	if c.agent != nil {
		errs = append(errs, c.agent.Close())
	}
	return errors.Join(errs...)
}

// Options of a remote command.
type Options struct {
	// ForwardAgent forwards ssh-agent to the remote side (-A).
	ForwardAgent bool
	// TTY requests a terminal (an interactive shell) of Width x Height
	// (80 x 40 when zero).
	TTY           bool
	Width, Height int
}

// Run runs command remotely with the given streams (an interactive shell
// when command is empty) and returns its exit status. A session that ends
// without one (the connection dropped) is 255 with an error.
func (c *Client) Run(command string, opts Options, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s, err := c.conn.NewSession()
	if err != nil {
		return 255, fmt.Errorf("opening an SSH session: %w", err)
	}
	defer s.Close()
	if opts.ForwardAgent {
		if err := agent.ForwardToAgent(c.conn, c.keys); err != nil {
			return 255, fmt.Errorf("forwarding ssh-agent: %w", err)
		}
		if err := agent.RequestAgentForwarding(s); err != nil {
			return 255, fmt.Errorf("forwarding ssh-agent: %w", err)
		}
	}
	if opts.TTY {
		w, h := opts.Width, opts.Height
		if w <= 0 || h <= 0 {
			w, h = 80, 40
		}
		if err := s.RequestPty("xterm", h, w, ssh.TerminalModes{}); err != nil {
			return 255, fmt.Errorf("requesting a terminal: %w", err)
		}
	}
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if command == "" {
		if err = s.Shell(); err == nil {
			err = s.Wait()
		}
	} else {
		err = s.Run(command)
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitStatus(), nil
	}
	return 255, fmt.Errorf("remote command: %w", err)
}

// DialRemote opens a TCP connection from the remote machine to addr
// (direct-tcpip), as a tunnel does.
func (c *Client) DialRemote(ctx context.Context, addr string) (net.Conn, error) {
	return c.conn.DialContext(ctx, "tcp", addr)
}

// Quote makes a remote command line of args, each quoted Go-style (%q), as
// fleet does.
func Quote(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// Pipe starts command remotely and returns its stdin and stdout as one
// stream (stderr is discarded); closing it ends the session.
func (c *Client) Pipe(command string) (io.ReadWriteCloser, error) {
	s, err := c.conn.NewSession()
	if err != nil {
		return nil, fmt.Errorf("opening an SSH session: %w", err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Start(command); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting %s: %w", command, err)
	}
	return &pipe{s: s, in: in, out: out}, nil
}

// pipe is a remote command's stdin and stdout.
type pipe struct {
	s   *ssh.Session
	in  io.WriteCloser
	out io.Reader
}

func (p *pipe) Read(b []byte) (int, error)  { return p.out.Read(b) }
func (p *pipe) Write(b []byte) (int, error) { return p.in.Write(b) }

// CloseWrite ends the remote command's stdin.
func (p *pipe) CloseWrite() error { return p.in.Close() }

func (p *pipe) Close() error { return errors.Join(p.in.Close(), p.s.Close()) }
