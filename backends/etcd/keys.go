package etcd

import (
	"fmt"
	"strings"

	"github.com/fleet-rebuild/fleet/core"
)

// The key layout, relative to the prefix. See the package documentation.
const (
	dirBody    = "body/"
	dirMachine = "machine/"
	dirMeta    = "meta/" // sorts right after machine/: see scopeRanges
	dirRef     = "ref/"
	dirSched   = "sched/"
	dirState   = "state/"
	dirUnit    = "unit/"
	dirWhere   = "where/"
	dirLocal   = "unit/local/"
	dirGlobal  = "unit/global/"
	keyLeader  = "leader"
)

// keyspace builds and parses the keys under one prefix.
type keyspace struct {
	prefix string // ends in "/"
}

func newKeyspace(prefix string) keyspace {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return keyspace{prefix: prefix}
}

func (k keyspace) dir(d string) string { return k.prefix + d }

func (k keyspace) unit(name string, global bool) string {
	if global {
		return k.prefix + dirGlobal + name
	}
	return k.prefix + dirLocal + name
}

func (k keyspace) body(h core.Hash) string { return k.prefix + dirBody + string(h) }

// refDir holds one key per unit that uses contents h, so that the last unit to go
// can delete the contents in the same transaction.
func (k keyspace) refDir(h core.Hash) string           { return k.prefix + dirRef + string(h) + "/" }
func (k keyspace) ref(h core.Hash, name string) string { return k.refDir(h) + name }

func (k keyspace) machine(id string) string          { return k.prefix + dirMachine + id }
func (k keyspace) metaDir(machine string) string     { return k.prefix + dirMeta + machine + "/" }
func (k keyspace) meta(machine, key string) string   { return k.metaDir(machine) + key }
func (k keyspace) schedDir(machine string) string    { return k.prefix + dirSched + machine + "/" }
func (k keyspace) sched(machine, unit string) string { return k.schedDir(machine) + unit }
func (k keyspace) state(machine, unit string) string {
	return k.prefix + dirState + machine + "/" + unit
}
func (k keyspace) leader() string { return k.prefix + keyLeader }

// whereDir indexes the placements of one unit: where/<unit>/<machine> exists
// exactly when sched/<machine>/<unit> does, so that a unit's placements are one
// range read.
func (k keyspace) whereDir(unit string) string       { return k.prefix + dirWhere + unit + "/" }
func (k keyspace) where(unit, machine string) string { return k.whereDir(unit) + machine }

// splitPair parses "<dir><a>/<b>" into a and b.
func (k keyspace) splitPair(key, dir string) (a, b string, err error) {
	rest, ok := strings.CutPrefix(key, k.prefix+dir)
	if !ok {
		return "", "", &ValueError{Key: key, Reason: "key outside " + k.prefix + dir}
	}
	a, b, ok = strings.Cut(rest, "/")
	if !ok || a == "" || b == "" || strings.Contains(b, "/") {
		return "", "", &ValueError{Key: key, Reason: "want " + k.prefix + dir + "<machine>/<unit>"}
	}
	return a, b, nil
}

// leaf parses "<dir><name>" into name.
func (k keyspace) leaf(key, dir string) (string, error) {
	name, ok := strings.CutPrefix(key, k.prefix+dir)
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", &ValueError{Key: key, Reason: "want " + k.prefix + dir + "<name>"}
	}
	return name, nil
}

// prefixEnd returns the end of the range of keys that start with p.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

// checkComponent rejects a name that cannot be one component of a key.
func checkComponent(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is empty", what)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%s %q contains '/' or NUL", what, name)
	}
	return nil
}

// ValueError reports a key under the prefix whose name or value this backend
// cannot read: written by something else, by a newer version, or corrupted. It
// names the key, so that an operator can inspect or delete it.
type ValueError struct {
	Key    string
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("etcd key %q: %s", e.Key, e.Reason)
}
