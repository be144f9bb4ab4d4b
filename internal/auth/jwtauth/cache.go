package jwtauth

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"
)

// evictScan bounds the entries put looks at to make room, so a full cache
// costs a constant, small amount per insert.
const evictScan = 32

// tokenCache remembers verified tokens so a client that sends the same
// token on every request pays for the signature check once. It is keyed by
// the token's SHA-256, so it holds no credential; an entry lives until the
// token's exp and at most MaxTTL. A nil cache (disabled) caches nothing.
type tokenCache struct {
	mu        sync.RWMutex
	entries   map[cacheKey]cacheEntry
	max       int
	ttl       time.Duration
	evictions uint64 // guarded by mu
}

type cacheEntry struct {
	claims *Claims
	until  time.Time // min(exp, verified + MaxTTL)
}

type cacheKey = [sha256.Size]byte

// key is the token's SHA-256 (zero for a disabled cache). It hashes the
// string's bytes in place: converting to []byte would copy the token to
// the heap on every request, the one allocation of the cached path;
// Sum256 only reads its argument.
func (c *tokenCache) key(token string) cacheKey {
	if c == nil {
		return cacheKey{}
	}
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

func newTokenCache(o CacheOptions) *tokenCache {
	if o.MaxEntries < 0 {
		return nil
	}
	return &tokenCache{entries: map[cacheKey]cacheEntry{}, max: o.MaxEntries, ttl: o.MaxTTL}
}

// get returns the claims of a token verified before, unless its entry has
// run out: since until is at most the token's exp, an expired token is
// never served from here, and goes through Verify's full checks (which
// then reject it).
func (c *tokenCache) get(key cacheKey, now time.Time) (*Claims, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.claims, true
}

func (c *tokenCache) put(key cacheKey, claims *Claims, now time.Time) {
	if c == nil {
		return
	}
	until := now.Add(c.ttl)
	if claims.Expiry.Before(until) {
		until = claims.Expiry
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[key] = cacheEntry{claims: claims, until: until}
}

// evict makes room for one entry: it drops the run-out entries among the
// first evictScan it sees, or, if none has run out, the first one. Map
// iteration starts at a random place, so that is a random eviction, which
// needs no recency bookkeeping on the read path.
func (c *tokenCache) evict(now time.Time) {
	var victim cacheKey
	seen, dropped := 0, false
	for k, e := range c.entries {
		if seen == 0 {
			victim = k
		}
		if !now.Before(e.until) {
			delete(c.entries, k)
			dropped = true
		}
		if seen++; seen == evictScan {
			break
		}
	}
	if !dropped {
		delete(c.entries, victim)
		c.evictions++
	}
}

// stats reports the entries held and the live ones evicted to make room.
func (c *tokenCache) stats() (entries int, evictions uint64) {
	if c == nil {
		return 0, 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries), c.evictions
}

// purge empties the cache: the key set changed.
func (c *tokenCache) purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
