package ratelimit

import (
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// keyShards spreads a policy's keys over maps with their own locks, so
// parallel requests for different keys rarely touch the same lock word, and
// a key's creation or expiry blocks only 1/keyShards of the lookups.
const keyShards = 32

// keyMap is a policy's keys. Lookups of existing keys take a shard's read
// lock and do not allocate.
type keyMap struct {
	seed   maphash.Seed
	n      atomic.Int64
	shards [keyShards]keyShard
}

type keyShard struct {
	mu sync.RWMutex
	m  map[string]*entry
	_  [64 - 24 - 8]byte // one cache line per shard: no false sharing of lock words
}

func newKeyMap() *keyMap {
	k := &keyMap{seed: maphash.MakeSeed()}
	for i := range k.shards {
		k.shards[i].m = map[string]*entry{}
	}
	return k
}

func (k *keyMap) get(key string) *entry {
	s := &k.shards[maphash.String(k.seed, key)%keyShards]
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	return e
}

// getBytes is get for a key still in a decode buffer; the map index on
// string(key) does not allocate.
func (k *keyMap) getBytes(key []byte) *entry {
	s := &k.shards[maphash.Bytes(k.seed, key)%keyShards]
	s.mu.RLock()
	e := s.m[string(key)]
	s.mu.RUnlock()
	return e
}

// create returns the entry for key, adding it unless the map already holds
// limit keys; limit < 0 means no limit. Concurrent creates may overshoot
// the limit by the number of shards at most, which is fine for a bound on
// memory.
func (k *keyMap) create(key string, limit int64) *entry {
	s := &k.shards[maphash.String(k.seed, key)%keyShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		return e
	}
	if limit >= 0 && k.n.Load() >= limit {
		return nil
	}
	e := newEntry(key)
	s.m[key] = e
	k.n.Add(1)
	return e
}

// appendAll appends every entry to dst.
func (k *keyMap) appendAll(dst []*entry) []*entry {
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.RLock()
		for _, e := range s.m {
			dst = append(dst, e)
		}
		s.mu.RUnlock()
	}
	return dst
}

// removeIf deletes e if idle(e) still holds under the shard lock and e.mu,
// marking it dead so that a caller holding it looks the key up again
// instead of counting into an entry nobody gossips.
func (k *keyMap) removeIf(e *entry, idle func(*entry) bool) bool {
	s := &k.shards[maphash.String(k.seed, e.key)%keyShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.m[e.key] != e || !idle(e) {
		return false
	}
	e.dead = true
	delete(s.m, e.key)
	k.n.Add(-1)
	return true
}

func (k *keyMap) len() int { return int(k.n.Load()) }

// evictSamples is how many keys evictColdest compares.
const evictSamples = 8

// evictColdest removes the key with the least activity in windows w−1 and
// w (activity) among evictSamples keys from shards visited from a random
// one, the overflow key excepted, so that a new key can take its place,
// and returns it (nil: none removed). A flood of distinct keys, each seen
// once, then churns among itself, while a key with traffic here or
// elsewhere in the cluster is evicted only when every key sampled is
// busier. A key at its limit is no exception: by its counts it cannot be
// told from a flood's key (with a limit of 1 every key is at it), and
// refusing to evict it would send every new key to the overflow budget
// again.
func (k *keyMap) evictColdest(w int64) *entry {
	var cold *entry
	coldAct := int64(0)
	seen := 0
	start := rand.IntN(keyShards)
	for i := 0; i < keyShards && seen < evictSamples; i++ {
		s := &k.shards[(start+i)%keyShards]
		s.mu.RLock()
		for key, e := range s.m { // map order is random: a fresh sample each time
			if key == OverflowKey {
				continue
			}
			if a := e.activity(w); cold == nil || a < coldAct {
				cold, coldAct = e, a
			}
			if seen++; seen == evictSamples {
				break
			}
		}
		s.mu.RUnlock()
	}
	if cold == nil || !k.removeIf(cold, func(e *entry) bool { return e.activity(w) == coldAct }) {
		return nil
	}
	return cold
}
