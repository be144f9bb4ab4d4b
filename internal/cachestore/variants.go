package cachestore

// variants is the value otter holds for one primary key: its variants,
// newest first. A set is never changed once otter holds it; every change
// builds a new one.
type variants struct {
	entries []*Entry
	// weight is the sum of the entries' weights; at most limits.maxSet, so
	// it fits otter's 32-bit weight.
	weight uint32
	// expiresAt is the latest deadline of the entries: the set lives in otter
	// as long as its longest-lived variant.
	expiresAt int64
}

// eviction is a variant that a store operation removed, to be reported to
// OnEvict once otter's lock is released.
type eviction struct {
	e      *Entry
	reason Reason
}

// setBuilder assembles a new set from an old one inside a Compute function,
// keeping the index in step with it.
type setBuilder struct {
	ix      *index
	lim     limits
	now     int64
	kept    []*Entry
	weight  int64
	expires int64
	removed []eviction
}

// keep adds e to the new set.
func (b *setBuilder) keep(e *Entry) {
	b.kept = append(b.kept, e)
	b.weight += e.weight
	b.expires = max(b.expires, e.expiresAt)
}

// drop removes e, which was in the old set, for reason.
func (b *setBuilder) drop(e *Entry, reason Reason) {
	b.ix.remove(e, reason)
	b.removed = append(b.removed, eviction{e, reason})
}

// carry goes through the old set's entries, dropping the expired ones and
// those discard selects (for reason), and keeping the others while they fit
// the limits on variants and set weight (older ones are dropped for size).
func (b *setBuilder) carry(old *variants, discard func(*Entry) bool, reason Reason) {
	if old == nil {
		return
	}
	for _, e := range old.entries {
		switch {
		case e.expiresAt <= b.now:
			b.drop(e, ReasonExpired)
		case discard != nil && discard(e):
			b.drop(e, reason)
		case len(b.kept) >= b.lim.maxVariants || b.weight+e.weight > b.lim.maxSet:
			b.drop(e, ReasonSize)
		default:
			b.keep(e)
		}
	}
}

// set returns the new set, or nil if it is empty.
func (b *setBuilder) set() *variants {
	if len(b.kept) == 0 {
		return nil
	}
	return &variants{entries: b.kept, weight: uint32(b.weight), expiresAt: b.expires}
}
