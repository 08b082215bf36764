package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/daemon/config"
)

// serveHTTP listens (or takes the socket-activated listeners) and serves the
// API, /metrics and /health on each.
func (d *Daemon) serveHTTP() (*httpServer, error) {
	s := &httpServer{}
	if len(d.opts.Listeners) > 0 {
		s.listeners = d.opts.Listeners
	} else if err := s.listen(d.cfg); err != nil {
		_ = s.shutdown(context.Background())
		return nil, err
	}
	handler := d.handler()
	for _, l := range s.listeners {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
		s.servers = append(s.servers, srv)
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.fail(fmt.Errorf("API on %s: %w", l.Addr(), err))
			}
		}()
		d.log.Info("API listening", "addr", l.Addr().String(), "network", l.Addr().Network())
	}
	return s, nil
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

// listenUnix creates the API socket with its mode and group. A socket left by
// a fleetd that died is replaced; one a live process answers on is not.
func listenUnix(path string, mode os.FileMode, group string) (net.Listener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("api_socket %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("api_socket %s is served by another process (another fleetd?)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("api_socket: remove stale socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api_socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api_socket: %w", err)
	}
	fail := func(err error) (net.Listener, error) {
		l.Close()
		return nil, err
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return fail(fmt.Errorf("api_socket_group: %w", err))
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(path, -1, gid); err != nil {
			return fail(fmt.Errorf("api_socket_group: %w", err))
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fail(fmt.Errorf("api_socket_mode: %w", err))
	}
	return l, nil
}

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
