// Package cachestore is the in-memory store behind meshgate's HTTP response
// cache. It keeps whole responses (status, headers, body) bounded by bytes,
// expires them after a TTL the caller computes, indexes them by route and
// path for purges, and reports per-route occupancy and evictions. It knows
// nothing of HTTP caching rules: the cache policy decides what is storable,
// computes keys and TTLs, and counts hits and misses itself.
//
// # Keys and variants
//
// A primary key (method + normalized URI, optionally + consumer scope; built
// by the caller) maps to a small, immutable set of variants, one per
// secondary key (derived by the caller from the response's Vary header and
// the request). The set is a single entry of the underlying otter cache, so
// a lookup is one hash-table read with no lock of this package, and the
// variants of one URL are evicted together, as one popularity unit. Every
// change to a set (Put, Delete, purge) is copy-on-write under otter's
// per-key lock (Cache.Compute), so a reader holding an *Entry or a set
// never sees it change.
//
// # Byte bound
//
// Each variant has a weight (see [Entry.Weight]); a set weighs the sum of its
// variants, and otter's MaximumWeight is Options.MaxBytes less a sixteenth.
// Otter on its own
// only bounds the weight eventually: a write lands in the hash table at once
// and reaches the eviction policy through a write buffer that a maintenance
// task drains later (on another goroutine by default), so right after a
// burst of writes the table may hold more than the maximum, by up to the
// write buffer's capacity of pending insertions (128 × GOMAXPROCS rounded up
// to a power of two), whatever their size. Writers help only once that
// buffer is full.
//
// The store tightens that: it counts the bytes held itself, exactly, in
// otter's atomic deletion callback and in its own Compute functions, and a
// Put that leaves the total above MaxBytes runs otter's maintenance
// (Cache.CleanUp) before returning, which replays the pending writes and
// evicts until the policy's weight is at most its maximum, a sixteenth below
// MaxBytes: so a full store under a stream of new entries runs that pass
// once per MaxBytes/16 of them, not on every Put. So:
//
//   - with one writer, when Put returns the store holds at most MaxBytes;
//   - with concurrent writers, at any instant it holds at most MaxBytes plus
//     the weights of the entries whose Put has not returned yet (each at
//     most MaxEntryBytes);
//   - once writers are quiet it is back under MaxBytes.
//
// Put returning true means the entry was stored, not that it stays: otter's
// W-TinyLFU policy admits a new entry against the one it would displace by
// their estimated frequency, and may evict the newcomer at once when the
// store is full (reported to OnEvict with reason "size").
//
// # Expiry
//
// Put takes the entry's TTL (freshness lifetime plus any stale-while-
// revalidate / stale-if-error window; the caller computes it). A set expires
// in otter when its longest-lived variant does. A variant that expires
// earlier than others in its set is hidden from lookups at once and its
// memory is released the next time its primary key is written or purged,
// or when the whole set expires. Expired sets are removed by otter's
// maintenance, which runs on writes, occasionally on reads, and on a
// one-second tick.
//
// # Locks
//
// Lookup takes no lock of this package. Writes run under otter's per-key
// bucket lock and, inside it, take the lock of the affected route's index;
// purges take a route's lock only to collect keys, and never call otter
// while holding it, so the order is always otter bucket → route index.
package cachestore
