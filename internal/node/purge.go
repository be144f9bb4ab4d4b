package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/cache"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/replica"
)

// A cache purge is an event, not state: there is nothing to converge on,
// only something every node must do once. It still travels as an item of
// the replicated store (kind cache-purge), because the store already has
// what an event needs to reach every node within about a second and to
// survive a lost broadcast: gossip's broadcast, then anti-entropy (push/
// pull) for a node that missed it or joins late. What makes an event of it:
//
//   - each purge is its own item, named by a random id, written once and
//     never changed, so no two purges overwrite each other (last-writer-
//     wins would lose all but one) and the store's versions play no part;
//   - a node applies an item when the store first stores it (OnApplied),
//     and removes only the entries it stored by the purge's time: an item
//     that reaches a node late, or again through a full-state sync, spares
//     the responses fetched since, which are the new content already;
//   - an item expires purgeRetention after its time, on every node alike
//     (replica.Options.Expired decides from the item, not from when this
//     node saw it), and is then dropped without a tombstone and refused if a
//     peer sends it again, so purges do not accumulate and cannot bounce.
//
// A node that is cut off from the cluster for longer than purgeRetention
// misses the purges made meanwhile; its entries still expire by their own
// lifetimes.
const (
	kindCachePurge = config.KindCachePurge
	// purgeRetention is how long a purge stays in the cluster's state: far
	// beyond the second a broadcast takes, long enough for a partition to
	// heal or a node to restart and rejoin through push/pull.
	purgeRetention = time.Hour
	// purgeClockSkew widens a purge's time bound on the applying node. The
	// time is the issuing node's clock and entries are stamped with the
	// applying node's, so a node whose clock runs ahead would otherwise keep
	// entries it stored just before the purge, stale ones; the price is
	// that a node applying the purge late also removes what it stored
	// within this margin after it (one more miss each).
	purgeClockSkew = time.Second
	// maxLivePurges bounds the purges in the cluster's state at once (each
	// lives purgeRetention): the store also holds the routes and other
	// resources, and a script purging URL by URL should use a prefix.
	maxLivePurges = 1000
)

// errTooManyPurges refuses a purge while maxLivePurges are live.
var errTooManyPurges = fmt.Errorf("%w: %d were made in the last %v; purge a prefix or the whole route instead",
	cache.ErrPurgeLimit, maxLivePurges, purgeRetention)

// purger applies the cluster's purges to the node's stores, once each.
type purger struct {
	stores *cache.Stores
	log    *slog.Logger
	now    func() time.Time

	mu sync.Mutex
	// applied are the purges applied, by id, with the entries each removed
	// (for the admin API's answer); forgotten after purgeRetention, when
	// the store refuses the item anyway.
	applied map[string]appliedPurge
}

type appliedPurge struct {
	at      time.Time
	removed int
}

func newPurger(stores *cache.Stores, log *slog.Logger, now func() time.Time) *purger {
	return &purger{stores: stores, log: log, now: now, applied: map[string]appliedPurge{}}
}

// apply removes what p selects, stored by its time (plus the skew margin),
// unless the purge id was applied already; it returns how many entries
// this call removed.
func (pg *purger) apply(id string, p cache.Purge) int {
	now := pg.now()
	pg.mu.Lock()
	if _, done := pg.applied[id]; done {
		pg.mu.Unlock()
		return 0
	}
	pg.applied[id] = appliedPurge{at: p.At}
	for old, a := range pg.applied {
		if now.Sub(a.at) > purgeRetention {
			delete(pg.applied, old)
		}
	}
	pg.mu.Unlock()
	n := pg.stores.Purge(p, p.At.Add(purgeClockSkew))
	pg.mu.Lock()
	if a, ok := pg.applied[id]; ok {
		a.removed = n
		pg.applied[id] = a
	}
	pg.mu.Unlock()
	pg.log.Info("cache purge applied", "id", id, "route", p.Route, "mode", p.Mode, "value", p.Value,
		"issued", p.At, "removed", n)
	return n
}

// removed is how many entries the purge id removed here.
func (pg *purger) removed(id string) int {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return pg.applied[id].removed
}

// onApplied takes the purges among items the cluster's store just stored
// and reports whether any other item (a resource to rebuild from) is there.
func (pg *purger) onApplied(items []replica.Item) (others bool) {
	for _, it := range items {
		if it.Kind != kindCachePurge {
			others = true
			continue
		}
		if it.Deleted {
			continue // purges are never deleted; a forged tombstone means nothing
		}
		p, err := cache.DecodePurge(it.Value)
		if err != nil {
			pg.log.Warn("cache purge refused", "id", it.Name, "from", it.Version.Node, "err", err)
			continue
		}
		pg.apply(it.Name, p)
	}
	return others
}

// purgeExpired is the store's Expired: a purge older than purgeRetention,
// by its own time, or one that cannot be read (garbage need not stay).
func purgeExpired(now func() time.Time) func(replica.Item) bool {
	return func(it replica.Item) bool {
		if it.Kind != kindCachePurge {
			return false
		}
		p, err := cache.DecodePurge(it.Value)
		return err != nil || now().Sub(p.At) > purgeRetention
	}
}

// newPurgeID names a purge: random, so that purges made at once through
// different nodes never share a name.
func newPurgeID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

// PurgeCache removes a route's stored responses on every node: it writes
// the purge into the cluster's state, which applies it here at once and
// spreads it; a standalone node applies it alone. It returns the purge's
// id and how many entries this node removed.
func (n *Node) PurgeCache(p cache.Purge) (id string, removed int, err error) {
	id = newPurgeID()
	if n.mesh == nil {
		return id, n.purges.apply(id, p), nil
	}
	if err := n.canWrite(kindCachePurge); err != nil {
		return "", 0, err
	}
	live, expired := 0, purgeExpired(time.Now)
	for _, it := range n.mesh.store.List(kindCachePurge) {
		if !it.Deleted && !expired(it) { // expired ones wait for the store's next collection
			live++
		}
	}
	if live >= maxLivePurges {
		return "", 0, errTooManyPurges
	}
	if _, err := n.mesh.store.Put(kindCachePurge, id, p.Encode()); err != nil {
		if errors.Is(err, replica.ErrFull) {
			return "", 0, fmt.Errorf("the cluster's state is full: %w", err)
		}
		return "", 0, err
	}
	return id, n.purges.removed(id), nil
}
