package cache

import (
	"strconv"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/policy"
)

// Stores are a node's response stores: one per cache.max_bytes in use,
// shared by every route and every snapshot that asks for that size
// (policy.Acquire), so a reload keeps what is stored unless max_bytes
// changes. They are counted together for the stored-bytes gauge.
type Stores struct {
	onEvict func(route, reason string)
	now     func() time.Time

	mu   sync.Mutex
	live map[*cachestore.Store]bool
}

// NewStores returns the node's registry. onEvict (may be nil) is told of
// every entry leaving a store, as cachestore.Options.OnEvict is: it must
// be quick and must not block. now is the stores' clock (nil: the real one).
func NewStores(onEvict func(route, reason string), now func() time.Time) *Stores {
	return &Stores{onEvict: onEvict, now: now, live: map[*cachestore.Store]bool{}}
}

// held is one store as a policy resource: closing it (with the last
// snapshot that uses it) forgets and stops it.
type held struct {
	*cachestore.Store
	stores *Stores
}

func (h held) Close() error {
	h.stores.mu.Lock()
	delete(h.stores.live, h.Store)
	h.stores.mu.Unlock()
	h.Store.Close()
	return nil
}

// Acquire returns the store of maxBytes for the snapshot of scope.
func (s *Stores) Acquire(scope *policy.Scope, maxBytes int64) (*cachestore.Store, error) {
	h, err := policy.Acquire(scope, "cache:store:"+strconv.FormatInt(maxBytes, 10), func() (held, error) {
		o := cachestore.Options{MaxBytes: maxBytes, Now: s.now}
		if f := s.onEvict; f != nil {
			o.OnEvict = func(route string, _ int64, reason cachestore.Reason) { f(route, string(reason)) }
		}
		st := cachestore.New(o)
		s.mu.Lock()
		s.live[st] = true
		s.mu.Unlock()
		return held{Store: st, stores: s}, nil
	})
	return h.Store, err
}

// Bytes returns the bytes each route holds now, summed over the live
// stores; routes holding nothing are left out.
func (s *Stores) Bytes() map[string]int64 {
	s.mu.Lock()
	stores := make([]*cachestore.Store, 0, len(s.live))
	for st := range s.live {
		stores = append(stores, st)
	}
	s.mu.Unlock()
	out := map[string]int64{}
	for _, st := range stores {
		for route, rs := range st.Stats() {
			if rs.Entries > 0 {
				out[route] += rs.Bytes
			}
		}
	}
	return out
}
