package gossip

import (
	"context"
	"net"
	"slices"
	"strings"
	"time"

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

// emptyGrace is how long a set that just became empty is held back. When
// a partitioned node comes back it may gossip stale "dead" news about live
// members, which refute it within milliseconds; publishing the empty set
// in between would fail requests that the old set would have served. A
// real total outage fails those requests anyway (connect errors), so the
// grace costs nothing there.
const emptyGrace = time.Second

// Run implements upstream.Source.
func (s *ServiceSource) Run(ctx context.Context, update func([]upstream.Address)) {
	var last []upstream.Address
	first := true
	var grace <-chan time.Time // set while an empty set is held back
	for {
		watch := s.c.Watch()
		cur := s.Endpoints()
		switch {
		case len(cur) == 0 && len(last) > 0 && grace == nil:
			grace = time.After(emptyGrace)
		case len(cur) > 0 || first:
			grace = nil
			if first || !slices.Equal(cur, last) {
				update(slices.Clone(cur))
				last, first = cur, false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-watch:
		case <-grace:
			grace = nil
			if cur := s.Endpoints(); len(cur) == 0 {
				update(nil)
				last = nil
			}
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
		m.Meta.Service == s.service && (s.subset == "" || m.Meta.Subset == s.subset) && bound(m.Meta.Inbound) &&
		ServesService(m.Meta.ID, s.service)
}

// bound reports whether addr is an inbound address one can connect to: a
// sidecar bound to port 0 publishes "ip:0" until its listener has its port.
func bound(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != "0" && port != ""
}

// ServesService reports whether a sidecar with SPIFFE ID id may serve
// service: the ID's last path segment is the service, or the service and a
// "-" suffix (spiffe://td/payments, spiffe://td/payments-v2,
// spiffe://td/ns/prod/sa/payments). A member's metadata is its own claim;
// the identity is what its CA issued. Without this rule any member of the
// trust domain could claim "service: payments" and receive its traffic
// (its handshake presents its own ID, which the claim made acceptable).
// Upstreams whose IDs follow another scheme pin them (tls.spiffe_ids).
func ServesService(id, service string) bool {
	if service == "" || !strings.HasPrefix(id, "spiffe://") {
		return false
	}
	last := id[strings.LastIndexByte(id, '/')+1:]
	return last == service || strings.HasPrefix(last, service+"-") && len(last) > len(service)+1
}
