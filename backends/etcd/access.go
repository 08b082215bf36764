package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// accessProbeKey is the key CheckAccess asks to write (and never writes).
const accessProbeKey = "access-check"

// CheckAccess checks that etcd lets this registry's client read and write
// every key under the prefix, without writing anything: one transaction
// whose condition never holds asks for a write under the prefix in the branch
// not taken and a read of the whole prefix in the other, and etcd checks the
// permissions of both branches before it evaluates the condition. fleetd calls
// it before it announces itself, so that a user without the role fails at
// start, naming the user and the prefix.
func (r *Registry) CheckAccess(ctx context.Context) error {
	key := r.keys.prefix + accessProbeKey
	return r.call(ctx, "CheckAccess", func(ctx context.Context) error {
		_, err := r.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.Version(key), "<", 0)).
			Then(clientv3.OpPut(key, "")).
			Else(clientv3.OpGet(r.keys.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1))).
			Commit()
		return err
	})
}

// denied rewrites etcd's refusals of access to name the user and the prefix;
// other errors pass unchanged.
func (r *Registry) denied(err error) error {
	who := "the etcd user named by the client certificate's common name (no user name set)"
	if r.cli.Username != "" {
		who = fmt.Sprintf("etcd user %q", r.cli.Username)
	}
	switch {
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return fmt.Errorf("%s may not read or write keys under %s (grant it a role with readwrite on that prefix): %w", who, r.keys.prefix, err)
	case errors.Is(err, rpctypes.ErrUserEmpty):
		return fmt.Errorf("etcd requires authentication and no user was given (set a user name and password, or a client certificate whose common name is an etcd user): %w", err)
	}
	return err
}
