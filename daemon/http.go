package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/daemon/config"
)

// Bounds of every API connection.
const (
	// apiMaxHeaderBytes bounds a request's line and headers (431 beyond).
	apiMaxHeaderBytes = 64 << 10
	// apiReadHeaderTimeout bounds the TLS handshake and reading the headers.
	apiReadHeaderTimeout = 10 * time.Second
	// apiReadTimeout bounds reading a whole request, body included.
	apiReadTimeout = time.Minute
	// apiIdleTimeout closes a kept-alive connection left idle.
	apiIdleTimeout = 2 * time.Minute
)

// serveHTTP listens (or takes the socket-activated listeners) and serves the
// API, /metrics and /health on each: TCP listeners with TLS only, each
// client with the role access gives it.
func (d *Daemon) serveHTTP() (*httpServer, error) {
	acc, err := newAccess(d.cfg, d.log.With("component", "api"))
	if err != nil {
		return nil, err
	}
	d.access = acc
	s, err := openAPI(d.cfg, d.opts.Listeners, acc)
	if err != nil {
		return nil, err
	}
	handler := d.handler()
	for _, l := range s.listeners {
		srv := acc.server(handler)
		s.servers = append(s.servers, srv)
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.fail(fmt.Errorf("API on %s: %w", l.Addr(), err))
			}
		}()
		_, isUnix := l.Addr().(*net.UnixAddr)
		d.log.Info("API listening", "addr", l.Addr().String(), "network", l.Addr().Network(), "tls", !isUnix)
		if !isUnix {
			acc.warn(l.Addr())
		}
	}
	return s, nil
}

// openAPI takes the socket-activated listeners, or else opens the configured
// ones, and makes every TCP listener serve TLS.
func openAPI(cfg config.Config, activated []net.Listener, acc *access) (*httpServer, error) {
	s := &httpServer{}
	abort := func(err error) (*httpServer, error) {
		for _, l := range s.listeners {
			l.Close()
		}
		_ = s.shutdown(context.Background())
		return nil, err
	}
	if len(activated) > 0 {
		s.listeners = activated
	} else if err := s.listen(cfg); err != nil {
		return abort(err)
	}
	for i, l := range s.listeners {
		wrapped, err := acc.wrap(l)
		if err != nil {
			return abort(err)
		}
		s.listeners[i] = wrapped
	}
	return s, nil
}

// server is the HTTP server of one API listener, with the bounds of every
// connection.
func (a *access) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h, ConnContext: a.connContext,
		ErrorLog:       slog.NewLogLogger(a.log.Handler(), slog.LevelInfo),
		MaxHeaderBytes: apiMaxHeaderBytes, ReadHeaderTimeout: apiReadHeaderTimeout,
		ReadTimeout: apiReadTimeout, IdleTimeout: apiIdleTimeout,
	}
}

// listen opens the configured unix socket and TCP address.
func (s *httpServer) listen(cfg config.Config) error {
	if cfg.APISocket != "" {
		l, err := listenUnix(cfg.APISocket, cfg.APISocketMode, cfg.APISocketGroup)
		if err != nil {
			return err
		}
		s.listeners = append(s.listeners, l)
		s.cleanup = append(s.cleanup, func() error {
			if err := os.Remove(cfg.APISocket); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		})
	}
	if cfg.APITCP != "" {
		l, err := net.Listen("tcp", cfg.APITCP)
		if err != nil {
			return fmt.Errorf("api_tcp: %w", err)
		}
		s.listeners = append(s.listeners, l)
	}
	return nil
}

// listenUnix creates the API socket with its mode and group. It is made in a
// private directory (mode 0700) next to path, given its group and mode there,
// and only then renamed to path: no client can connect while it is more open
// than mode. A socket left by a fleetd that died is replaced; one a live
// process answers on is not.
func listenUnix(path string, mode os.FileMode, group string) (net.Listener, error) {
	gid := -1
	if group != "" {
		g, err := lookupGroupID(group)
		if err != nil {
			return nil, fmt.Errorf("api_socket_group: %w", err)
		}
		gid = int(g)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("api_socket %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("api_socket %s is served by another process (another fleetd?)", path)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api_socket: %w", err)
	}
	private, err := os.MkdirTemp(filepath.Dir(path), ".fleetd-sock-")
	if err != nil {
		return nil, fmt.Errorf("api_socket: %w", err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("api_socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		l.Close()
		return nil, err
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("api_socket_group: %w", err))
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(fmt.Errorf("api_socket_mode: %w", err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("api_socket: %w", err))
	}
	return socketListener{l, &net.UnixAddr{Name: path, Net: "unix"}}, nil
}

// socketListener is a unix listener whose socket was renamed to addr.
type socketListener struct {
	*net.UnixListener
	addr net.Addr
}

func (l socketListener) Addr() net.Addr { return l.addr }

// handler serves the API, with /metrics and /health, through the API handler
// of the current configuration (replaced on reload).
func (d *Daemon) handler() http.Handler {
	d.setAPI(d.cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*d.api.Load()).ServeHTTP(w, r)
	})
}

// setAPI builds the API handler for cfg.
func (d *Daemon) setAPI(cfg config.Config) {
	h := api.NewHandler(api.Config{
		Registry:   d.reg,
		TokenLimit: cfg.TokenLimit,
		Version:    d.opts.Version,
		Available:  d.healthy,
		Logger:     d.log.With("component", "api"),
		Identify:   d.access.identify,
		Metrics:    d.metrics.handler(),
		Health:     http.HandlerFunc(d.serveHealth),
		Observe:    d.metrics.observeAPI,
	})
	d.api.Store(&h)
}

// serveHealth answers 200 while the machine's presence is renewed, 503
// otherwise, with a JSON body saying which.
func (d *Daemon) serveHealth(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{"machine": d.machine.ID}
	code := http.StatusOK
	if err := d.healthy(); err != nil {
		code = http.StatusServiceUnavailable
		body["status"], body["error"] = "unhealthy", err.Error()
	} else {
		body["status"] = "ok"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
