package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/httpcache"
)

// Modes of a purge: which of a route's entries go.
const (
	PurgePath   = "path"   // the entries of one path (every query and variant)
	PurgePrefix = "prefix" // the entries whose path starts with the value
	PurgeAll    = "all"    // every entry of the route
)

// Purge removes a route's stored responses. It is an event that travels:
// At is when it was issued, on the issuer's clock, and the nodes that apply
// it remove only what they stored by then (see Stores.Purge).
type Purge struct {
	Route string `json:"route"`
	Mode  string `json:"mode"`
	// Value is the path (PurgePath) or prefix (PurgePrefix), normalized as
	// the cache normalizes request paths; empty for PurgeAll.
	Value string    `json:"value,omitempty"`
	At    time.Time `json:"at"`
}

// ErrPurgeLimit is wrapped by a node that refuses a purge because it has
// made too many of late (the admin API answers RESOURCE_EXHAUSTED).
var ErrPurgeLimit = errors.New("too many cache purges")

// maxPurgeValue bounds a path or prefix; a request line is no longer.
const maxPurgeValue = 8 << 10

// NewPurge checks an operator's purge and normalizes its path or prefix the
// way the stage normalizes request paths (percent-encoding, dot segments),
// so that "/a/%7Eb" purges what "/a/~b" stored. A query is refused: a path
// purge takes every query of the path already.
func NewPurge(route, mode, value string, at time.Time) (Purge, error) {
	p := Purge{Route: route, Mode: mode, At: at}
	if route == "" {
		return p, errors.New("a route is required")
	}
	switch mode {
	case PurgeAll:
		if value != "" {
			return p, fmt.Errorf("mode all takes no path (got %q)", value)
		}
		return p, nil
	case PurgePath, PurgePrefix:
	default:
		return p, fmt.Errorf("mode %q: want path, prefix or all", mode)
	}
	if !strings.HasPrefix(value, "/") || len(value) > maxPurgeValue {
		return p, fmt.Errorf("%s %q: want a path starting with / (at most %d bytes)", mode, value, maxPurgeValue)
	}
	if strings.ContainsAny(value, "?#") {
		return p, fmt.Errorf("%s %q: a path without query or fragment (a path purge takes every query)", mode, value)
	}
	// As the server parses a request line: "//x" is a path, not a host.
	u, err := url.ParseRequestURI(value)
	if err != nil {
		return p, fmt.Errorf("%s %q: %v", mode, value, err)
	}
	p.Value = httpcache.RequestTarget(u)
	return p, nil
}

// Encode is the purge as a cluster item's value.
func (p Purge) Encode() []byte {
	b, _ := json.Marshal(p) // strings and a time: cannot fail
	return b
}

// DecodePurge reads a purge from a cluster item's value. A peer's bytes are
// outside input: a purge that NewPurge would refuse is refused.
func DecodePurge(b []byte) (Purge, error) {
	var p Purge
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("purge: %w", err)
	}
	if p.At.IsZero() {
		return p, errors.New("purge: no time")
	}
	q, err := NewPurge(p.Route, p.Mode, p.Value, p.At)
	if err != nil {
		return p, fmt.Errorf("purge: %w", err)
	}
	if q.Value != p.Value {
		return p, fmt.Errorf("purge: %s %q is not normalized", p.Mode, p.Value)
	}
	return p, nil
}

func (p Purge) String() string {
	if p.Mode == PurgeAll {
		return fmt.Sprintf("route %s: all", p.Route)
	}
	return fmt.Sprintf("route %s: %s %s", p.Route, p.Mode, p.Value)
}

// Purge applies p to every live store, removing the entries stored at or
// before storedBy (on the stores' clock), and returns how many it removed.
// The caller picks storedBy from p.At and what it knows of clocks; entries
// stored later are kept, so applying a purge late, or twice, costs no
// response fetched since.
func (s *Stores) Purge(p Purge, storedBy time.Time) int {
	n := 0
	for _, st := range s.stores() {
		switch p.Mode {
		case PurgePath:
			n += st.PurgeExactStoredBy(p.Route, p.Value, storedBy)
		case PurgePrefix:
			n += st.PurgePrefixStoredBy(p.Route, p.Value, storedBy)
		case PurgeAll:
			n += st.PurgeRouteStoredBy(p.Route, storedBy)
		}
	}
	return n
}

// Stats returns each route's share of the live stores, summed: a node has
// one store per cache.max_bytes in use, so several only while a snapshot
// with another size retires.
func (s *Stores) Stats() map[string]cachestore.RouteStats {
	out := map[string]cachestore.RouteStats{}
	for _, st := range s.stores() {
		for route, rs := range st.Stats() {
			sum, ok := out[route]
			if !ok {
				sum.Evictions = map[cachestore.Reason]uint64{}
			}
			sum.Entries += rs.Entries
			sum.Bytes += rs.Bytes
			for reason, n := range rs.Evictions {
				sum.Evictions[reason] += n
			}
			out[route] = sum
		}
	}
	return out
}

// stores is a copy of the live stores, to use without the registry's lock.
func (s *Stores) stores() []*cachestore.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*cachestore.Store, 0, len(s.live))
	for st := range s.live {
		out = append(out, st)
	}
	return out
}
