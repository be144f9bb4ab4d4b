package cachestore

import (
	"math"
	"time"
)

// Reason says why an entry left the store. Its values are the label values
// a metrics exporter can use as they are.
type Reason string

const (
	// ReasonSize: evicted to keep the store under MaxBytes, or dropped from
	// a full variant set (MaxVariants) to make room for a newer variant.
	ReasonSize Reason = "size"
	// ReasonExpired: its TTL passed.
	ReasonExpired Reason = "expired"
	// ReasonReplaced: a Put stored a newer entry with the same primary and
	// secondary key.
	ReasonReplaced Reason = "replaced"
	// ReasonPurged: removed by Delete or a Purge method.
	ReasonPurged Reason = "purged"
)

// reasons lists every Reason, in the order of the per-route counters.
var reasons = [...]Reason{ReasonSize, ReasonExpired, ReasonReplaced, ReasonPurged}

func (r Reason) index() int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	panic("cachestore: unknown reason " + string(r))
}

// Defaults for the zero values of Options.
const (
	// DefaultMaxVariants bounds the variants per primary key: a Vary on a
	// high-cardinality header must not grow one key without limit.
	DefaultMaxVariants = 8
	// defaultEntryFraction: without MaxEntryBytes, one entry may take at
	// most 1/8 of the store, so a single large response cannot flush it.
	defaultEntryFraction = 8
)

// Options configures a Store.
type Options struct {
	// MaxBytes bounds the total weight of the stored entries (see
	// [Entry.Weight]). It must be positive.
	MaxBytes int64
	// MaxEntryBytes is the largest weight Put accepts; a heavier entry is
	// refused. Zero means MaxBytes/8. It is capped at MaxBytes and at
	// math.MaxUint32 (otter weighs an entry in 32 bits).
	MaxEntryBytes int64
	// MaxVariants bounds the variants kept per primary key; Put drops the
	// oldest beyond it (reason "size"). Zero means DefaultMaxVariants.
	MaxVariants int
	// Now is the clock, for tests; nil means the real clock (wall time
	// advanced by the monotonic clock, so a wall-clock step does not expire
	// or revive entries). The store hands it to otter, so expiry in otter and
	// the store's own checks agree.
	Now func() time.Time
	// OnEvict, if set, is told of every entry that leaves the store, with
	// its route, weight and the reason, for metrics. It runs synchronously,
	// sometimes while otter holds its locks (evictions and expirations run
	// inside otter's deletion callback), so it must be quick, must not
	// block or panic, and must not call the Store.
	OnEvict func(route string, bytes int64, reason Reason)
}

// limits are the resolved bounds of a Store.
type limits struct {
	maxBytes int64
	// evictTo is otter's MaximumWeight, a sixteenth below maxBytes: a Put
	// that passes maxBytes has otter evict down to it, so the next Puts
	// find room without a maintenance pass each (hysteresis).
	evictTo     int64
	maxEntry    int64
	maxVariants int
	// maxSet bounds one primary key's set: otter weighs it in 32 bits and
	// evicts at once a set heavier than the whole store.
	maxSet int64
}

func (o Options) limits() limits {
	if o.MaxBytes <= 0 {
		panic("cachestore: Options.MaxBytes must be positive")
	}
	l := limits{maxBytes: o.MaxBytes, maxEntry: o.MaxEntryBytes, maxVariants: o.MaxVariants}
	l.evictTo = o.MaxBytes - o.MaxBytes/evictionSlack
	l.maxSet = min(l.evictTo, math.MaxUint32)
	if l.maxEntry <= 0 {
		l.maxEntry = max(o.MaxBytes/defaultEntryFraction, 1)
	}
	l.maxEntry = min(l.maxEntry, l.maxSet)
	if l.maxVariants <= 0 {
		l.maxVariants = DefaultMaxVariants
	}
	return l
}

// clock returns the store's time source in Unix nanoseconds.
func (o Options) clock() func() int64 {
	if o.Now != nil {
		now := o.Now
		return func() int64 { return now().UnixNano() }
	}
	base := time.Now()
	baseNano := base.UnixNano()
	return func() int64 { return baseNano + int64(time.Since(base)) }
}

// otterClock adapts the store's clock to otter.Clock.
type otterClock struct{ now func() int64 }

func (c otterClock) NowNano() int64 { return c.now() }

// Tick drives otter's periodic clean-up (expiry of idle sets) in real time,
// also under a test clock: tests call Store.CleanUp after advancing theirs.
func (c otterClock) Tick(d time.Duration) <-chan time.Time { return time.Tick(d) }

// evictionSlack: the store evicts down to MaxBytes - MaxBytes/evictionSlack
// once past MaxBytes. On a full store with every request a miss, a
// maintenance pass per Put cost 4.5 µs of its 6 (BenchmarkPut/evicting);
// this makes it one pass per MaxBytes/16 of stored bytes, at the price of
// holding between 15/16 and all of MaxBytes when full.
const evictionSlack = 16
