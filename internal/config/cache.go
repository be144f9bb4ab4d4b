package config

// The edge's shared HTTP cache: a node-wide store (cache) that routes use
// with their own section (routes[].cache). What may be stored and for how
// long is RFC 9111's decision (internal/httpcache); these are the
// operator's bounds and choices on top of it.

// Defaults of the cache sections, documented in docs/config.md.
const (
	DefaultCacheMaxBytes     = 64 << 20
	DefaultCacheMaxBody      = 1 << 20
	DefaultCacheCollapseWait = Duration(1e9) // 1s
	// MinCacheMaxBytes keeps the store large enough for a few entries:
	// every entry costs about half a KiB before its body.
	MinCacheMaxBytes = 64 << 10
	// CacheEntryShare is the part of the store one entry may take at most
	// (cachestore's default MaxEntryBytes is MaxBytes/8): a route's
	// max_body must fit in it.
	CacheEntryShare = 8
)

// CacheStore is the node's response store, shared by every route that
// caches.
type CacheStore struct {
	// MaxBytes bounds the memory the stored responses take (bodies,
	// headers and bookkeeping).
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// Cache is a route's use of the shared cache.
type Cache struct {
	// TTL is the freshness given to a storable response that states none
	// (no max-age, s-maxage or Expires); 0: only what the response says
	// (or the heuristic of RFC 9111 §4.2.2).
	TTL Duration `yaml:"ttl"`
	// MaxBody is the largest response body stored.
	MaxBody ByteSize `yaml:"max_body"`
	// VaryConsumer keys the entries of an authenticated route by consumer
	// (default: true when the route has auth, unless Shared).
	VaryConsumer *bool `yaml:"vary_consumer"`
	// Shared lets consumers of an authenticated route share entries, for
	// the responses RFC 9111 §3.5 allows it for (public, s-maxage,
	// must-revalidate).
	Shared bool `yaml:"shared"`
	// StoreSetCookie lets responses with Set-Cookie be stored (and handed
	// to every client).
	StoreSetCookie bool `yaml:"store_set_cookie"`
	// CollapseWait bounds how long a request waits for a concurrent miss
	// of the same key to be answered before going upstream itself.
	CollapseWait Duration `yaml:"collapse_wait"`
	// StaleIfError is how long past its freshness a stored response may
	// answer when the upstream fails (500, 502, 503, 504, or the proxy's
	// own connect, timeout and overload errors) and the response states no
	// stale-if-error of its own (RFC 5861 §4); 0: only what the response
	// or the request allows. must-revalidate, proxy-revalidate, s-maxage
	// and no-cache still forbid it.
	StaleIfError Duration `yaml:"stale_if_error"`
}

// PerConsumer reports whether the route's entries are keyed by consumer
// (defaults applied).
func (c *Cache) PerConsumer() bool { return c.VaryConsumer != nil && *c.VaryConsumer }

// defaultCache sets a route's cache defaults; auth tells whether the route
// authenticates.
func defaultCache(c *Cache, auth bool) {
	if c.MaxBody == 0 {
		c.MaxBody = DefaultCacheMaxBody
	}
	if c.CollapseWait == 0 {
		c.CollapseWait = DefaultCacheCollapseWait
	}
	if c.VaryConsumer == nil {
		on := auth && !c.Shared
		c.VaryConsumer = &on
	}
}
