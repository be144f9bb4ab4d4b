package config

import "fmt"

// cacheStore validates the node's cache section (defaults applied).
func (v *validator) cacheStore(c *Config) {
	if c.Cache.MaxBytes < MinCacheMaxBytes {
		v.at("cache.max_bytes", "cache.max_bytes %d is too small: at least %d (64KiB)", c.Cache.MaxBytes, MinCacheMaxBytes)
	}
}

// cache validates a route's cache section (defaults applied).
func (v *validator) cache(p string, r *Route, store CacheStore) {
	c := r.Cache
	who := fmt.Sprintf("route %q", r.Name)
	if r.Aggregate != nil {
		v.at(p, "%s: cache does not apply to a composite route yet", who)
		return
	}
	if limit := int64(store.MaxBytes) / CacheEntryShare; store.MaxBytes >= MinCacheMaxBytes && int64(c.MaxBody) > limit {
		v.at(p+".max_body", "%s: cache max_body %d exceeds what one entry may take of cache.max_bytes (1/%d: %d); lower max_body or raise cache.max_bytes",
			who, c.MaxBody, CacheEntryShare, limit)
	}
	if r.Auth == nil {
		if c.Shared {
			v.at(p+".shared", "%s: cache shared applies to authenticated routes only (the route has no auth)", who)
		}
		if c.PerConsumer() {
			v.at(p+".vary_consumer", "%s: cache vary_consumer needs auth on the route (there is no consumer to key by)", who)
		}
		return
	}
	switch {
	case c.Shared && c.PerConsumer():
		v.at(p+".vary_consumer", "%s: cache shared and vary_consumer exclude each other: shared lets consumers share entries, vary_consumer keeps them apart", who)
	case !c.Shared && !c.PerConsumer():
		v.at(p+".vary_consumer", "%s: cache vary_consumer false would hand one consumer's responses to another; set shared: true to share the responses that allow it (public, s-maxage, must-revalidate)", who)
	}
}
