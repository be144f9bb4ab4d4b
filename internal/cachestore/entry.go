package cachestore

import (
	"math"
	"net/http"
	"time"

	"github.com/meshgate/meshgate/internal/httpcache"
)

// Entry is one stored response. The caller fills the exported fields and
// hands the entry to [Store.Put], which stores a copy; Put sets Key and
// Secondary on that copy. A stored entry is immutable: readers may keep it
// after it has been replaced or evicted, so nobody may change it, nor its
// Header, Body or Vary (Clone the Header before editing it for a reply).
type Entry struct {
	// Status is the response's status code.
	Status int
	// Header is the stored response header; nil when it is Packed.
	Header http.Header
	// Packed is the stored response header packed in one string, which
	// costs the garbage collector less than a Header: a caller sets one or
	// the other. The store does not interpret it.
	Packed httpcache.PackedHeader
	// Body is the whole response body.
	Body []byte
	// RequestTime and ResponseTime are the request_time and response_time of
	// RFC 9111 section 4.2.3, for computing the response's age.
	RequestTime  time.Time
	ResponseTime time.Time
	// Route names the route the response was served on; stats and purges
	// are per route. Keep its cardinality to the configured routes: the
	// store keeps cumulative counters for every route it has seen.
	Route string
	// Path is the normalized request path that PurgeExact and PurgePrefix
	// match. Empty leaves the entry reachable only by PurgeRoute, PurgeAll
	// and Delete.
	Path string
	// Vary lists the header names the response varies on, as the caller
	// normalized them, so that a Lookup match function does not reparse the
	// Vary header on every request. The store does not interpret it.
	Vary []string
	// TTL is how long the entry may stay in memory after Put: its freshness
	// lifetime plus any stale window the policy may serve it in. Put refuses
	// an entry whose TTL is not positive.
	TTL time.Duration
	// Facts are the caller's reading of Header (and of RequestTime and
	// ResponseTime), made once when the response is stored rather than on
	// every request it answers. The store does not interpret them; an
	// entry whose Facts are not Parsed has its reader compute them.
	Facts httpcache.Facts

	// Key is the primary key the entry is stored under (set by Put).
	Key string
	// Secondary is the Vary-derived secondary key the entry is stored
	// under (set by Put).
	Secondary string

	// weight, storedAt and expiresAt are set by Put on the stored copy.
	weight    int64
	storedAt  int64 // on the store's clock, in Unix nanoseconds
	expiresAt int64 // on the store's clock, in Unix nanoseconds
}

// Weight returns the bytes the entry is accounted for (see the constants
// below), or 0 for an entry that was not stored.
func (e *Entry) Weight() int64 { return e.weight }

// ExpiresAt returns when the entry leaves the store, on the store's clock.
// It is the zero time for an entry that was not stored.
func (e *Entry) ExpiresAt() time.Time {
	if e.expiresAt == 0 {
		return time.Time{}
	}
	return time.Unix(0, e.expiresAt)
}

// The weight of an entry estimates the memory it pins, so that MaxBytes
// bounds the heap rather than the sum of body sizes:
//
//	weight = cap(Body)
//	       + Σ header fields (len(name) + HeaderFieldOverhead
//	                          + Σ values (len(value) + HeaderValueOverhead))
//	       + len(Packed)
//	       + Σ Vary names (len(name) + HeaderValueOverhead)
//	       + len(primary) + len(secondary) + len(Route) + len(Path)
//	       + EntryOverhead
//
// cap rather than len counts the body's whole backing array, which is what
// the entry keeps alive; [BodyWriter.Bytes] returns bodies with cap == len.
// The key and name strings are counted per entry even where variants share
// them, which overstates rather than understates.
const (
	// EntryOverhead is the fixed cost of one stored variant: the Entry
	// struct (272 bytes on 64-bit, a 288-byte allocation), otter's node and
	// hash-table slot (about 90), the variant set's share (about 50) and the
	// route/path index record (about 80), rounded up. A test keeps it above
	// the struct's size plus otter's node.
	EntryOverhead = 512
	// HeaderFieldOverhead is the cost of one header field beyond its name's
	// bytes: the map slot (string and slice headers) and the values' array.
	HeaderFieldOverhead = 64
	// HeaderValueOverhead is the cost of one value beyond its bytes: its
	// string header.
	HeaderValueOverhead = 16
)

// weigh returns e's weight under the formula above. It saturates rather
// than overflows; anything near that is refused by MaxEntryBytes anyway.
func weigh(e *Entry) int64 {
	w := int64(cap(e.Body)) + EntryOverhead +
		int64(len(e.Key)+len(e.Secondary)+len(e.Route)+len(e.Path)+e.Packed.Len())
	for name, values := range e.Header {
		w += int64(len(name)) + HeaderFieldOverhead
		for _, v := range values {
			w += int64(len(v)) + HeaderValueOverhead
		}
	}
	for _, name := range e.Vary {
		w += int64(len(name)) + HeaderValueOverhead
	}
	if w < 0 {
		return math.MaxInt64
	}
	return w
}
