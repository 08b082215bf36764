package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/fleet-rebuild/fleet/core"
)

// signalBuffer is the capacity of the channel that receives D-Bus signals. The
// reader only filters and coalesces, so it keeps up; godbus queues the rest.
const signalBuffer = 1024

// conn is one connection to the manager: go-systemd's Conn over a single godbus
// connection, plus the signals fleet reads itself. It is replaced as a whole
// when the manager goes away.
//
// go-systemd asks for two connections, one for calls and one for signals, so
// that with a bus daemon the call connection is spared the signals. A private
// socket has no daemon: systemd sends every signal to every direct connection,
// so a second connection would only decode each signal twice. fleet hands
// go-systemd the same connection both times.
type conn struct {
	sd      *sdbus.Conn
	bus     *dbus.Conn
	signals chan *dbus.Signal
	done    <-chan struct{} // closed once bus is closed
	id      identity        // of the manager process
}

// dial connects to the private socket. It is bounded by ctx; the connection
// itself lives until close is called, the manager drops it, or a write to it
// takes longer than writeTimeout.
func dial(ctx context.Context, socket string, writeTimeout time.Duration) (*conn, error) {
	bus, id, err := dialPrivate(ctx, socket, writeTimeout)
	if err != nil {
		return nil, fmt.Errorf("systemd: connect to %s: %w", socket, err)
	}
	// go-systemd's NewConnection makes calls without a context; run it aside
	// and close the socket if ctx ends first, which makes those calls return.
	type result struct {
		sd  *sdbus.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		sd, err := sdbus.NewConnection(func() (*dbus.Conn, error) { return bus, nil })
		res <- result{sd, err}
	}()
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		bus.Close()
		r = <-res
		r.err = errors.Join(ctx.Err(), r.err)
	}
	if r.err != nil {
		bus.Close()
		return nil, fmt.Errorf("systemd: connect to %s: %w", socket, r.err)
	}
	c := &conn{
		sd: r.sd, bus: bus, signals: make(chan *dbus.Signal, signalBuffer), done: bus.Context().Done(),
		id: id,
	}
	bus.Signal(c.signals)
	if err := c.subscribe(ctx); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// dialPrivate opens one godbus connection to a private systemd socket: EXTERNAL
// authentication with the numeric uid, and no Hello (there is no bus daemon).
// The connection outlives ctx, which bounds only the handshake; every write on
// it must complete within writeTimeout (see deadlineConn). It also identifies
// the manager at the other end.
func dialPrivate(ctx context.Context, socket string, writeTimeout time.Duration) (*dbus.Conn, identity, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, identity{}, err
	}
	var id identity
	id.instance, id.err = peerInstance(nc)
	c, err := dbus.NewConn(deadlineConn{Conn: nc, timeout: writeTimeout})
	if err != nil {
		nc.Close()
		return nil, identity{}, err
	}
	auth := make(chan error, 1)
	go func() { auth <- c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}) }()
	select {
	case err = <-auth:
	case <-ctx.Done():
		c.Close()
		<-auth
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, identity{}, fmt.Errorf("authenticate: %w", err)
	}
	return c, id, nil
}

// deadlineConn is the socket under a godbus connection. godbus writes a
// message without a context, holding a lock that every other call and Close
// also take: once a hung manager stops reading and the socket's buffer is
// full, one write would block them all for as long as it hangs. So every
// write must complete within timeout; if it does not, the socket is closed (a
// message cut short leaves the stream unusable), the call fails, and the
// Manager reconnects as after any dropped connection.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c deadlineConn) Write(p []byte) (int, error) {
	if err := c.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.Conn.Close()
	}
	return n, err
}

// subscribe asks the manager for unit signals. Direct connections get them
// anyway; subscribing keeps that true whatever systemd decides for them later.
func (c *conn) subscribe(ctx context.Context) error {
	obj := c.bus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	if err := obj.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.Subscribe", 0).Store(); err != nil {
		return fmt.Errorf("systemd: subscribe to unit signals: %w", err)
	}
	return nil
}

// close closes the connection. Safe to call more than once.
func (c *conn) close() { c.sd.Close() }

// alive reports whether the connection is still open.
func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// wrapCallErr adds context to a failed D-Bus call and marks it
// core.ErrUnavailable when the manager could not be reached: the connection is
// gone (or a write to it timed out, which closes it), or the call got no answer within CallTimeout while the caller's ctx
// was still live (a hung manager). Callers can retry those later.
func (c *conn) wrapCallErr(ctx context.Context, err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case !c.alive() || errors.Is(err, dbus.ErrClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("systemd: %s: %w (%w)", msg, core.ErrUnavailable, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("systemd: %s: no answer within the call timeout, manager hung?: %w (%w)", msg, core.ErrUnavailable, err)
	}
	return fmt.Errorf("systemd: %s: %w", msg, err)
}

// dbusErrorName returns the D-Bus error name carried by err, or "".
func dbusErrorName(err error) string {
	var v dbus.Error
	if errors.As(err, &v) {
		return v.Name
	}
	var p *dbus.Error
	if errors.As(err, &p) {
		return p.Name
	}
	return ""
}

// errNoSuchUnit is the D-Bus error systemd returns for a unit it has not loaded.
const errNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit"
