package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/internal/procfs"
)

// access is how the API's listeners authenticate their clients and which
// role each gets: TCP listeners serve TLS only, a client's role comes from
// its verified certificate; a unix socket peer's from its credentials.
type access struct {
	tls          *tls.Config // nil: no TLS configured, so no TCP listener
	noClientAuth bool
	certs        api.CertRoles
	peers        api.PeerRoles
	lookupGroups bool // a peer's groups matter: look them up per connection
	log          *slog.Logger
}

// newAccess reads the TLS files and resolves the role lists of cfg; an error
// names the option.
func newAccess(cfg config.Config, log *slog.Logger) (*access, error) {
	a := &access{noClientAuth: cfg.APITLSNoClientAuth, log: log}
	if cfg.APITLSCertFile != "" {
		conf, err := serverTLS(cfg)
		if err != nil {
			return nil, err
		}
		a.tls = conf
	}
	for _, l := range []struct {
		entries   []string
		cns, orgs *[]string
	}{
		{cfg.APITLSAdmin, &a.certs.AdminCNs, &a.certs.AdminOrgs},
		{cfg.APITLSRead, &a.certs.ReadCNs, &a.certs.ReadOrgs},
	} {
		for _, e := range l.entries {
			if cn, ok := strings.CutPrefix(e, "cn:"); ok {
				*l.cns = append(*l.cns, cn)
			} else if o, ok := strings.CutPrefix(e, "o:"); ok {
				*l.orgs = append(*l.orgs, o)
			}
		}
	}
	for _, l := range []struct {
		opt        string
		entries    []string
		uids, gids *[]uint32
	}{
		{"api_socket_admin", cfg.APISocketAdmin, &a.peers.AdminUIDs, &a.peers.AdminGIDs},
		{"api_socket_read", cfg.APISocketRead, &a.peers.ReadUIDs, &a.peers.ReadGIDs},
	} {
		for _, e := range l.entries {
			if name, ok := strings.CutPrefix(e, "user:"); ok {
				uid, err := lookupID(name, "user", func(n string) (string, error) {
					u, err := user.Lookup(n)
					if err != nil {
						return "", err
					}
					return u.Uid, nil
				})
				if err != nil {
					return nil, fmt.Errorf("%s: %w", l.opt, err)
				}
				*l.uids = append(*l.uids, uid)
			} else if name, ok := strings.CutPrefix(e, "group:"); ok {
				gid, err := lookupGroupID(name)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", l.opt, err)
				}
				*l.gids = append(*l.gids, gid)
			}
		}
	}
	if !a.peers.Open() {
		// root and fleetd's own user can read fleetd's credentials anyway.
		a.peers.AdminUIDs = append(a.peers.AdminUIDs, 0, uint32(os.Getuid()))
		a.lookupGroups = len(a.peers.AdminGIDs)+len(a.peers.ReadGIDs) > 0
	}
	return a, nil
}

// serverTLS is the TLS configuration of the API's TCP listeners: TLS 1.2 or
// later, and a client certificate signed by api_tls_client_cafile unless
// api_tls_no_client_auth.
func serverTLS(cfg config.Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.APITLSCertFile, cfg.APITLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("api_tls_certfile %s, api_tls_keyfile %s: %w", cfg.APITLSCertFile, cfg.APITLSKeyFile, err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientAuth: tls.NoClientCert}
	if cfg.APITLSClientCAFile != "" {
		pem, err := os.ReadFile(cfg.APITLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("api_tls_client_cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("api_tls_client_cafile %s holds no PEM certificate", cfg.APITLSClientCAFile)
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// wrap makes a listener serve TLS if it is a TCP one (api_tcp, or one handed
// over by socket activation); a TCP listener without TLS configured is
// refused.
func (a *access) wrap(l net.Listener) (net.Listener, error) {
	if _, ok := l.Addr().(*net.UnixAddr); ok {
		return l, nil
	}
	if a.tls == nil {
		return nil, fmt.Errorf("API listener %s %s: the API is served over TCP only with TLS: set api_tls_certfile, api_tls_keyfile and api_tls_client_cafile", l.Addr().Network(), l.Addr())
	}
	return tls.NewListener(l, a.tls), nil
}

// warn logs, at every start, what makes a TLS listener less safe than it
// looks.
func (a *access) warn(addr net.Addr) {
	switch {
	case a.noClientAuth:
		a.log.Warn("INSECURE: api_tls_no_client_auth=true: the API accepts TLS clients without a certificate, and each is admin: anyone who can reach this address can run any command as root on every machine",
			"addr", addr.String())
	case len(a.certs.AdminCNs)+len(a.certs.AdminOrgs)+len(a.certs.ReadCNs)+len(a.certs.ReadOrgs) == 0:
		a.log.Warn("no client certificate has a role (api_tls_admin, api_tls_read are empty): every TLS client will be refused with 403", "addr", addr.String())
	}
}

// peerKey is the context key of a unix socket peer's identity.
type peerKey struct{}

// connContext records a unix socket peer's identity, read once per
// connection from its credentials.
func (a *access) connContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	peer, err := peerOf(uc)
	if err != nil {
		a.log.Warn("API: reading a socket peer's credentials", "err", err)
		return context.WithValue(ctx, peerKey{}, api.Identity{Name: "socket peer of unknown credentials"})
	}
	if a.lookupGroups {
		peer.Groups = userGroups(peer.UID)
	}
	return context.WithValue(ctx, peerKey{}, a.peers.Identify(peer))
}

// identify is the API's Config.Identify: a TLS client by its verified
// certificate (or admin, with api_tls_no_client_auth), a socket peer by its
// credentials, anything else without a role.
func (a *access) identify(r *http.Request) api.Identity {
	if r.TLS != nil {
		if chains := r.TLS.VerifiedChains; len(chains) > 0 && len(chains[0]) > 0 {
			return a.certs.Identify(chains[0][0])
		}
		if a.noClientAuth {
			return api.Identity{Name: "TLS client " + r.RemoteAddr + " (api_tls_no_client_auth)", Role: api.RoleAdmin}
		}
		return api.Identity{Name: "TLS client " + r.RemoteAddr + " without a verified certificate"}
	}
	if id, ok := r.Context().Value(peerKey{}).(api.Identity); ok {
		return id
	}
	return api.Identity{Name: "client " + r.RemoteAddr}
}

// peerOf reads the credentials of a unix socket's peer (SO_PEERCRED).
func peerOf(c *net.UnixConn) (api.Peer, error) {
	cred, err := procfs.PeerCred(c)
	if err != nil {
		return api.Peer{}, err
	}
	return api.Peer{UID: cred.Uid, GID: cred.Gid}, nil
}

// userGroups are the groups the user uid belongs to in the user database;
// none if it cannot be read.
func userGroups(uid uint32) []uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil
	}
	var out []uint32
	for _, s := range ids {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out
}

// lookupGroupID resolves a group name or numeric gid.
func lookupGroupID(name string) (uint32, error) {
	return lookupID(name, "group", func(n string) (string, error) {
		g, err := user.LookupGroup(n)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
}

// lookupID resolves name, a number or a name that lookup turns into one.
func lookupID(name, kind string, lookup func(string) (string, error)) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	id, err := lookup(name)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q: id %q is not a number", kind, name, id)
	}
	return uint32(n), nil
}
