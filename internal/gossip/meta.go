package gossip

import (
	"errors"
	"fmt"
	"math"

	"github.com/hashicorp/memberlist"

	"github.com/meshgate/meshgate/internal/wire"
)

// Meta is what a node tells the cluster about itself, carried in
// memberlist's node metadata (at most 512 bytes) and refreshed with
// UpdateNode when it changes (the sidecar's app going unhealthy).
type Meta struct {
	Role    string // "edge" or "sidecar"
	Service string // the sidecar's service
	Subset  string // its subset / version label, e.g. "v2"
	// Inbound is the address other nodes reach the service at (the
	// sidecar's inbound mTLS listener), host:port.
	Inbound string
	ID      string // the node's SPIFFE ID
	// Healthy: the sidecar's local app answers its health check. Discovery
	// offers only healthy endpoints.
	Healthy bool
	// Leaving is set by a node that is shutting down gracefully just before
	// it leaves: memberlist reports a leave and a death alike, and a member
	// that left must not be reconnected to.
	Leaving bool
}

// metaVersion is the version this release writes and knows all of. A later
// release may add flags and append fields: this one reads any later version,
// ignoring both, so nodes of two releases discover each other.
const metaVersion = 1

// Marshal encodes m; it fails when the result exceeds memberlist's limit.
func (m Meta) Marshal() ([]byte, error) {
	b := []byte{metaVersion}
	var flags uint64
	if m.Healthy {
		flags |= 1
	}
	if m.Leaving {
		flags |= 2
	}
	b = wire.AppendUvarint(b, flags)
	for _, s := range []string{m.Role, m.Service, m.Subset, m.Inbound, m.ID} {
		b = wire.AppendString(b, s)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("gossip: node metadata of %d bytes exceeds %d (shorten the SPIFFE ID or names)", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// UnmarshalMeta decodes a peer's metadata (outside input).
func UnmarshalMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, errors.New("gossip: empty node metadata")
	}
	r := wire.NewReader(b)
	later := r.AtLeastVersion(metaVersion) > metaVersion
	maxFlags := uint64(3)
	if later {
		maxFlags = math.MaxUint64 // flags a later release added mean nothing here
	}
	flags := r.UvarintMax(maxFlags, "metadata flags")
	m.Healthy, m.Leaving = flags&1 != 0, flags&2 != 0
	for _, f := range []*string{&m.Role, &m.Service, &m.Subset, &m.Inbound, &m.ID} {
		*f = r.String(memberlist.MetaMaxSize, "metadata field")
	}
	if later {
		r.Rest() // fields a later release appended
	}
	if err := r.Done(); err != nil {
		return Meta{}, fmt.Errorf("gossip: node metadata: %w", err)
	}
	return m, nil
}
