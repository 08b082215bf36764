package api

import (
	"context"
	"fmt"
	"sync"

	"github.com/fleet-rebuild/fleet/core"
)

// contentsCacheSize bounds the unit contents the handler keeps, in bytes.
const contentsCacheSize = 32 << 20

// contentsCache keeps the options of unit contents by hash. Contents are
// stored by the hash of their canonical form, so an entry never goes stale;
// the cache only saves a registry read per unit when listing. The oldest
// entries are dropped first once the size is exceeded.
type contentsCache struct {
	mu    sync.Mutex
	max   int
	size  int
	byKey map[core.Hash]cachedContents
	order []core.Hash // insertion order, oldest first
}

type cachedContents struct {
	opts []UnitOption
	size int
}

func newContentsCache(maxBytes int) *contentsCache {
	return &contentsCache{max: maxBytes, byKey: map[core.Hash]cachedContents{}}
}

func (c *contentsCache) get(h core.Hash) ([]UnitOption, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[h]
	return e.opts, ok
}

func (c *contentsCache) put(h core.Hash, opts []UnitOption, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[h]; ok || size > c.max {
		return
	}
	c.byKey[h] = cachedContents{opts: opts, size: size}
	c.order = append(c.order, h)
	c.size += size
	for c.size > c.max {
		oldest := c.order[0]
		c.order = c.order[1:]
		c.size -= c.byKey[oldest].size
		delete(c.byKey, oldest)
	}
}

// unitOptions returns the options of the contents stored under hash. The
// returned slice is shared: callers must not modify it. A missing body is
// core.ErrUnitNotFound, wrapped.
func (h *handler) unitOptions(ctx context.Context, hash core.Hash) ([]UnitOption, error) {
	if opts, ok := h.contents.get(hash); ok {
		return opts, nil
	}
	data, err := h.cfg.Registry.UnitContents(ctx, hash)
	if err != nil {
		return nil, err
	}
	uf, err := core.ParseUnitFile(string(hash), data)
	if err != nil {
		return nil, fmt.Errorf("stored unit contents %s do not parse: %w", hash, err)
	}
	opts := make([]UnitOption, len(uf.Options))
	for i, o := range uf.Options {
		opts[i] = UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	h.contents.put(hash, opts, len(data))
	return opts, nil
}
