package gossip

import (
	"context"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/internal/upstream"
)

// ServiceSource is an upstream.Source of the live, healthy sidecars of a
// service (optionally of one subset): their inbound addresses, updated
// whenever membership or a member's metadata changes.
type ServiceSource struct {
	c               *Cluster
	service, subset string
}

// Service returns the source of service's endpoints; subset "" means all.
func (c *Cluster) Service(service, subset string) *ServiceSource {
	return &ServiceSource{c: c, service: service, subset: subset}
}

var _ upstream.Source = (*ServiceSource)(nil)

// Run implements upstream.Source.
func (s *ServiceSource) Run(ctx context.Context, update func([]upstream.Address)) {
	var last []upstream.Address
	first := true
	for {
		watch := s.c.Watch()
		cur := s.Endpoints()
		if first || !slices.Equal(cur, last) {
			update(slices.Clone(cur))
			last, first = cur, false
		}
		select {
		case <-ctx.Done():
			return
		case <-watch:
		}
	}
}

// Endpoints is the current set, sorted by address.
func (s *ServiceSource) Endpoints() []upstream.Address {
	var out []upstream.Address
	for _, m := range s.c.Members() {
		if s.offers(m) {
			out = append(out, upstream.Address{Addr: m.Meta.Inbound})
		}
	}
	slices.SortFunc(out, func(a, b upstream.Address) int { return strings.Compare(a.Addr, b.Addr) })
	return slices.CompactFunc(out, func(a, b upstream.Address) bool { return a.Addr == b.Addr })
}

// IDs are the SPIFFE IDs the service's live sidecars advertise: the
// identities a client accepts from this upstream's endpoints when the
// config pins none.
func (s *ServiceSource) IDs() []string {
	var ids []string
	for _, m := range s.c.Members() {
		if s.offers(m) && m.Meta.ID != "" {
			ids = append(ids, m.Meta.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func (s *ServiceSource) offers(m Member) bool {
	return m.State == Alive && m.MetaErr == nil && m.Meta.Role == "sidecar" && m.Meta.Healthy &&
		m.Meta.Service == s.service && (s.subset == "" || m.Meta.Subset == s.subset) && m.Meta.Inbound != ""
}
