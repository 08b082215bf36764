package api

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
)

// Role is what a client may do through the API.
type Role string

const (
	// RoleNone may do nothing: every request is answered 403.
	RoleNone Role = ""
	// RoleRead may read: GET of every resource (list-units, cat, status,
	// list-machines), /metrics and /health. Any other method is 403.
	RoleRead Role = "read-only"
	// RoleAdmin may do everything.
	RoleAdmin Role = "admin"
)

// Identity is who a request comes from and the role it was granted, as
// Config.Identify tells it.
type Identity struct {
	// Name names the client in a 403 and in the log: a certificate's
	// subject ("CN=ops,O=fleet-admin") or a socket peer ("uid 1000 gid 1000").
	Name string
	Role Role
}

// authorize is the 403 of a request its client's role does not allow, or
// nil. It comes before everything else, so a refused client learns nothing
// of the server, not even whether it is available.
func (h *handler) authorize(r *http.Request) *httpError {
	if h.cfg.Identify == nil {
		return nil
	}
	id := h.cfg.Identify(r)
	name := truncate(id.Name, 256)
	switch {
	case id.Role == RoleAdmin:
		return nil
	case id.Role == RoleRead && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		return nil
	case id.Role == RoleRead:
		return &httpError{code: http.StatusForbidden, msg: fmt.Sprintf("access denied: %q has role %s, which may only read (GET), not %s", name, RoleRead, methodLabel(r.Method))}
	}
	return &httpError{code: http.StatusForbidden, msg: fmt.Sprintf("access denied: %q has no role on this fleet API", name)}
}

// CertRoles chooses the role of a TLS client from its verified certificate:
// admin if its subject's common name is in AdminCNs or one of its
// organizations in AdminOrgs, else read-only if listed in ReadCNs or
// ReadOrgs, else none. Names are compared exactly.
type CertRoles struct {
	AdminCNs, AdminOrgs []string
	ReadCNs, ReadOrgs   []string
}

// Identify is the identity of the client holding cert.
func (c CertRoles) Identify(cert *x509.Certificate) Identity {
	id := Identity{Name: cert.Subject.String()}
	matches := func(cns, orgs []string) bool {
		return slices.Contains(cns, cert.Subject.CommonName) ||
			slices.ContainsFunc(cert.Subject.Organization, func(o string) bool { return slices.Contains(orgs, o) })
	}
	switch {
	case matches(c.AdminCNs, c.AdminOrgs):
		id.Role = RoleAdmin
	case matches(c.ReadCNs, c.ReadOrgs):
		id.Role = RoleRead
	}
	return id
}

// Peer is the process at the other end of a unix socket: its user and group
// (SO_PEERCRED) and the other groups it belongs to.
type Peer struct {
	UID, GID uint32
	Groups   []uint32
}

// PeerRoles chooses the role of a unix socket peer. With every list empty
// every peer is admin: who may connect is decided by the socket's mode and
// group alone (fleet's behaviour). Otherwise a peer is admin if its user is
// in AdminUIDs or its group or one of its groups in AdminGIDs, else
// read-only if listed in ReadUIDs or ReadGIDs, else none.
type PeerRoles struct {
	AdminUIDs, AdminGIDs []uint32
	ReadUIDs, ReadGIDs   []uint32
}

// Open reports whether every peer is admin (no list is set).
func (p PeerRoles) Open() bool {
	return len(p.AdminUIDs)+len(p.AdminGIDs)+len(p.ReadUIDs)+len(p.ReadGIDs) == 0
}

// Identify is the identity of peer.
func (p PeerRoles) Identify(peer Peer) Identity {
	id := Identity{Name: fmt.Sprintf("uid %d gid %d", peer.UID, peer.GID)}
	matches := func(uids, gids []uint32) bool {
		return slices.Contains(uids, peer.UID) || slices.Contains(gids, peer.GID) ||
			slices.ContainsFunc(peer.Groups, func(g uint32) bool { return slices.Contains(gids, g) })
	}
	switch {
	case p.Open(), matches(p.AdminUIDs, p.AdminGIDs):
		id.Role = RoleAdmin
	case matches(p.ReadUIDs, p.ReadGIDs):
		id.Role = RoleRead
	}
	return id
}
