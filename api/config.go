package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// Defaults and limits of the server.
const (
	// DefaultTokenLimit is the page size when Config.TokenLimit is zero, as
	// fleet's token_limit.
	DefaultTokenLimit = 100
	// MaxTokenLimit is the largest page size.
	MaxTokenLimit = 10000
	// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is
	// zero: room for the largest unit file (core.MaxUnitFileSize) even with
	// every byte escaped in JSON.
	DefaultMaxBodyBytes = 4 << 20
	// MinMaxBodyBytes is the smallest accepted Config.MaxBodyBytes.
	MinMaxBodyBytes = 1 << 10

	// MaxUnitOptions is the most options one unit may have.
	MaxUnitOptions = 4096
	// MaxMetadataOps is the most operations one PATCH /machines may carry; it
	// keeps a patch within one etcd transaction, so it applies atomically.
	MaxMetadataOps = 100
	// MaxMachineIDLength is the longest machine ID a metadata path may name.
	MaxMachineIDLength = 256
	// MaxMetadataKeyLength is the longest metadata key.
	MaxMetadataKeyLength = 256
	// MaxMetadataValueLength is the longest metadata value, in bytes.
	MaxMetadataValueLength = 4096
)

// Config configures the handler made by NewHandler.
type Config struct {
	// Registry is the cluster state the API reads and writes. Required.
	Registry core.Registry
	// TokenLimit is the page size of every listing, 1 to MaxTokenLimit;
	// zero means DefaultTokenLimit. Page tokens carry it: a token made under
	// another limit is refused.
	TokenLimit int
	// Version is fleetd's version, sent as "Server: fleetd/<Version>".
	// Required.
	Version string
	// Available, if set, is asked before every API request: while it returns
	// an error, every API request is answered 503 with fleet's message
	// ("fleet server unable to communicate with etcd"). /metrics and /health
	// are always served.
	Available func() error
	// MaxBodyBytes bounds a request body (413 beyond it); zero means
	// DefaultMaxBodyBytes, otherwise at least MinMaxBodyBytes.
	MaxBodyBytes int64
	// Identify, if set, tells who each request comes from and the role it
	// has (see Role): a request its role does not allow is answered 403,
	// before anything else. Nil: every request is admin.
	Identify func(*http.Request) Identity
	// Logger receives one record per failed request with its cause (5xx at
	// Error level) and one Debug record per request; nil discards.
	Logger *slog.Logger
	// Metrics and Health, if set, are served at /metrics and /health.
	Metrics, Health http.Handler
	// Observe, if set, is called once per request after the answer is
	// written, with the route (see Routes), the method (one of the
	// standard ones or "OTHER"), the status code and the time taken.
	Observe func(route, method string, code int, d time.Duration)
}

// Routes are the route labels Config.Observe receives, one per resource
// whatever the prefix (/fleet/v1 or /v1-alpha) and the unit or machine named.
var Routes = []string{
	routeDiscovery, routeUnits, routeUnit, routeStates, routeState,
	routeMachines, routeMetrics, routeHealth, routeOther,
}

const (
	routeDiscovery = "discovery"
	routeUnits     = "units"
	routeUnit      = "unit"
	routeStates    = "states"
	routeState     = "state"
	routeMachines  = "machines"
	routeMetrics   = "metrics"
	routeHealth    = "health"
	routeOther     = "other" // 404s and 405s outside the resources
)

// Validate reports the first invalid field, naming it.
func (c Config) Validate() error {
	switch {
	case c.Registry == nil:
		return errors.New("api: Config.Registry is required")
	case c.TokenLimit < 0 || c.TokenLimit > MaxTokenLimit:
		return fmt.Errorf("api: Config.TokenLimit %d: must be between 1 and %d (0 for %d)", c.TokenLimit, MaxTokenLimit, DefaultTokenLimit)
	case c.Version == "":
		return errors.New("api: Config.Version is required")
	case strings.ContainsFunc(c.Version, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("api: Config.Version %q: must not contain spaces or control characters", c.Version)
	case c.MaxBodyBytes < 0 || (c.MaxBodyBytes > 0 && c.MaxBodyBytes < MinMaxBodyBytes):
		return fmt.Errorf("api: Config.MaxBodyBytes %d: must be at least %d (0 for %d)", c.MaxBodyBytes, MinMaxBodyBytes, DefaultMaxBodyBytes)
	}
	return nil
}

// withDefaults fills in the zero fields that have a default.
func (c Config) withDefaults() Config {
	if c.TokenLimit == 0 {
		c.TokenLimit = DefaultTokenLimit
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
