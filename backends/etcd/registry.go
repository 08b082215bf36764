package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleet-rebuild/fleet/core"
)

var _ core.Registry = (*Registry)(nil)

// Defaults of the options.
const (
	// DefaultPrefix is the root of every key the registry writes.
	DefaultPrefix = "/_coreos.com/fleet/"
	// DefaultRequestTimeout bounds one attempt of one registry call.
	DefaultRequestTimeout = 3 * time.Second
	// DefaultAttempts is how many times a call is tried while etcd is unavailable.
	DefaultAttempts = 3
	// DefaultBackoff is the wait before the second attempt; it doubles after
	// each attempt, up to maxBackoff.
	DefaultBackoff = 100 * time.Millisecond
	// DefaultMaxTxnOps is etcd's default --max-txn-ops: the most operations one
	// transaction may carry.
	DefaultMaxTxnOps = 128

	maxBackoff = 2 * time.Second
	// conflictRounds bounds the read-then-compare-and-swap rounds of one attempt
	// when another writer keeps changing the same key.
	conflictRounds = 3
)

// Registry is a core.Registry on etcd v3. It is safe for concurrent use. It
// does not own the client: close the client after the last call.
type Registry struct {
	cli  *clientv3.Client
	keys keyspace
	cfg  settings

	mu       sync.Mutex
	sessions map[sessionKey]*heldLease // presence leases this Registry holds
	leader   *heldLease                // leadership lease this Registry holds
	virtual  *virtualLeases            // nil unless WithClock

	rev     atomic.Int64 // highest store revision seen in a response
	cluster clusterLog   // to notice a new cluster on the same endpoints
	watches watchTable   // live Notify watches, for Settle
	skips   skipLog      // unreadable values left out of listings
	// leaderWatch caches the leader key for standby engines.
	leaderWatch leaderWatch
}

// settings are what the options set.
type settings struct {
	prefix         string
	clock          core.Clock
	requestTimeout time.Duration
	attempts       int
	backoff        time.Duration
	maxTxnOps      int
	logger         *slog.Logger
}

// Option configures a Registry made by New.
type Option func(*settings)

// WithPrefix roots every key under prefix instead of DefaultPrefix. Registries
// with different prefixes on one etcd do not see each other.
func WithPrefix(prefix string) Option {
	return func(s *settings) { s.prefix = prefix }
}

// WithClock makes leases expire by clock instead of by etcd's wall-clock TTL:
// for tests and the simulator. See the package documentation ("Virtual time").
func WithClock(clock core.Clock) Option {
	return func(s *settings) { s.clock = clock }
}

// WithRequestTimeout bounds each attempt of a registry call (default
// DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) Option {
	return func(s *settings) { s.requestTimeout = d }
}

// WithRetry sets how many attempts a call makes while etcd is unavailable (at
// least 1) and the backoff before the second; the backoff doubles after each
// attempt up to 2 s.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(s *settings) { s.attempts, s.backoff = attempts, backoff }
}

// WithMaxTxnOps sets the most operations the registry puts in one transaction.
// It must not exceed the server's --max-txn-ops (128 unless configured).
// ApplySchedule and PublishUnitStates split larger batches; see the package
// documentation ("Atomicity").
func WithMaxTxnOps(n int) Option {
	return func(s *settings) { s.maxTxnOps = n }
}

// WithLogger sets where the registry logs what it skips: values and keys it
// cannot read in a listing (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) { s.logger = l }
}

// New returns a Registry that stores its keys in etcd through cli.
func New(cli *clientv3.Client, opts ...Option) (*Registry, error) {
	s := settings{
		prefix:         DefaultPrefix,
		requestTimeout: DefaultRequestTimeout,
		attempts:       DefaultAttempts,
		backoff:        DefaultBackoff,
		maxTxnOps:      DefaultMaxTxnOps,
		logger:         slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&s)
	}
	switch {
	case cli == nil:
		return nil, errors.New("etcd registry: no client")
	case s.prefix == "" || s.prefix[0] != '/':
		return nil, fmt.Errorf("etcd registry: prefix %q does not start with '/'", s.prefix)
	case s.requestTimeout <= 0:
		return nil, fmt.Errorf("etcd registry: request timeout %v is not positive", s.requestTimeout)
	case s.attempts < 1:
		return nil, fmt.Errorf("etcd registry: %d attempts, want at least 1", s.attempts)
	case s.backoff < 0:
		return nil, fmt.Errorf("etcd registry: backoff %v is negative", s.backoff)
	case s.logger == nil:
		return nil, errors.New("etcd registry: nil logger")
	case s.maxTxnOps < 2:
		return nil, fmt.Errorf("etcd registry: max txn ops %d, want at least 2", s.maxTxnOps)
	}
	r := &Registry{
		cli:      cli,
		keys:     newKeyspace(s.prefix),
		cfg:      s,
		sessions: map[sessionKey]*heldLease{},
	}
	if s.clock != nil {
		r.virtual = newVirtualLeases()
	}
	r.watches.init()
	return r, nil
}

// Prefix returns the prefix every key of this registry starts with, ending in
// "/".
func (r *Registry) Prefix() string { return r.keys.prefix }

// call runs one registry operation. Each attempt first expires the virtual
// leases that are due (with WithClock), then runs f under the request timeout;
// an attempt that fails because etcd is unavailable is retried after a backoff,
// up to the configured number of attempts. An f that writes and is retried
// must cope with finding its own earlier write, whose reply was lost.
func (r *Registry) call(ctx context.Context, op string, f func(ctx context.Context) error) error {
	backoff := r.cfg.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
		err := r.expireDue(actx)
		if err == nil {
			err = f(actx)
		}
		cancel()
		if err == nil {
			return nil
		}
		err = classify(ctx, err)
		if !errors.Is(err, core.ErrUnavailable) || attempt >= r.cfg.attempts {
			return fmt.Errorf("etcd registry: %s: %w", op, r.denied(err))
		}
		if serr := sleep(ctx, backoff); serr != nil {
			return fmt.Errorf("etcd registry: %s: %w (while retrying after: %v)", op, serr, err)
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// classify wraps err with core.ErrUnavailable if it says that etcd could not be
// reached or could not answer in time (while the caller's ctx is still live).
func classify(ctx context.Context, err error) error {
	var ve *ValueError
	switch {
	case ctx.Err() != nil, errors.As(err, &ve), errors.Is(err, core.ErrUnavailable):
		return err
	case unavailable(err):
		return fmt.Errorf("%w: %w", core.ErrUnavailable, err)
	}
	return err
}

func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	if s, ok := status.FromError(err); ok {
		return s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded
	}
	return false
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// get reads one key or, with opts, a range; it records the revision.
func (r *Registry) get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	floor := r.rev.Load()
	resp, err := r.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	r.sawAfter(resp.Header, floor)
	return resp, nil
}

// txn commits one transaction and records the revision.
func (r *Registry) txn(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
	floor := r.rev.Load()
	resp, err := r.cli.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return nil, err
	}
	r.sawAfter(resp.Header, floor)
	return resp, nil
}

// batches splits ops into runs of at most n.
func batches(ops []clientv3.Op, n int) [][]clientv3.Op {
	if len(ops) == 0 {
		return [][]clientv3.Op{nil}
	}
	var out [][]clientv3.Op
	for len(ops) > 0 {
		k := min(n, len(ops))
		out = append(out, ops[:k])
		ops = ops[k:]
	}
	return out
}
