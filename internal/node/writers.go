package node

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/replica/itemsig"
	"github.com/meshgate/meshgate/pki"
)

// The cluster's trust model has two gates (docs/security.md):
//
//   - who may join (cluster.allow): the transport admits a peer's SVID, and
//     a member sees membership, discovery and every replicated item;
//   - who may write (cluster.writers): a peer's replicated item is applied
//     only when it is signed by a writer (package itemsig). Gossip relays
//     items through every member, so the transport cannot say who wrote one;
//     the signature does.
//
// Writers default to the edges by the naming rule discovery uses for
// services (the last path segment): spiffe://td/edge, spiffe://td/edge-eu-1,
// spiffe://td/ns/gw/sa/edge. That covers the demo and the usual deployment
// (operators change the mesh through an edge's admin API, the edge writes)
// without edits, and leaves out the sidecars, whose workloads are whatever
// the trust domain issues, and meshctl's identities. A deployment whose
// edges are named otherwise lists them in cluster.writers.

// writersPolicy is cluster.writers, with cluster.kind_writers replacing it
// for the kinds that names, as itemsig.Writers. The kind "" (who may join:
// joinAuthorizer) is a writer of any kind.
func writersPolicy(patterns []string, byKind map[string][]string) (itemsig.Writers, error) {
	all, err := writerRule(patterns, "cluster.writers")
	if err != nil {
		return nil, err
	}
	if len(byKind) == 0 {
		return all, nil
	}
	rules := make(map[string]itemsig.Writers, len(byKind))
	for kind, ps := range byKind {
		if rules[kind], err = writerRule(ps, "cluster.kind_writers."+kind); err != nil {
			return nil, err
		}
	}
	return func(kind string, id spiffeid.ID) error {
		if kind == "" {
			if all(kind, id) == nil {
				return nil
			}
			for _, r := range rules {
				if r(kind, id) == nil {
					return nil
				}
			}
			return fmt.Errorf("not a writer of any kind")
		}
		if r, ok := rules[kind]; ok {
			return r(kind, id)
		}
		return all(kind, id)
	}, nil
}

// writerRule is one list of writer patterns (field names it in errors);
// empty: the default, the edges.
func writerRule(patterns []string, field string) (itemsig.Writers, error) {
	if len(patterns) == 0 {
		return func(_ string, id spiffeid.ID) error {
			if isEdgeID(id) {
				return nil
			}
			return fmt.Errorf("not in %s (default: IDs whose last path segment is edge or edge-…)", field)
		}, nil
	}
	allow, err := pki.AllowPatterns(patterns...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return func(_ string, id spiffeid.ID) error {
		if allow(id, nil) != nil {
			return fmt.Errorf("not in %s", field)
		}
		return nil
	}, nil
}

// isEdgeID is the default writer rule: the last path segment is "edge" or
// "edge-" and more.
func isEdgeID(id spiffeid.ID) bool {
	p := id.Path()
	last := p[strings.LastIndexByte(p, '/')+1:]
	return last == "edge" || strings.HasPrefix(last, "edge-") && len(last) > len("edge-")
}

// joinAuthorizer is who may join the cluster: cluster.allow when set.
// Otherwise the trust domain, less the identities this node's admin API
// names as operators or viewers: those are people's and tools' (meshctl's)
// SVIDs, which have no business in the cluster, and a viewer that joined
// would see every replicated item, API key hashes included. A writer is
// admitted even when an admin pattern matches it (an edge may also be an
// operator of another's API). A node without admin.api does not know those
// identities: an explicit cluster.allow, the same on every node, is the
// recommended setting (docs/security.md).
func joinAuthorizer(cfg *config.Config, td spiffeid.TrustDomain, writers itemsig.Writers) (tlsconfig.Authorizer, error) {
	cl := cfg.Cluster
	if len(cl.Allow) > 0 {
		a, err := pki.AllowPatterns(cl.Allow...)
		if err != nil {
			return nil, fmt.Errorf("cluster.allow: %w", err)
		}
		return a, nil
	}
	var admins []tlsconfig.Authorizer
	if api := cfg.Admin.API; api != nil {
		for _, ps := range [][]string{api.Operators, api.Viewers} {
			if len(ps) == 0 {
				continue
			}
			a, err := pki.AllowPatterns(ps...)
			if err != nil {
				return nil, fmt.Errorf("admin.api: %w", err)
			}
			admins = append(admins, a)
		}
	}
	inTD := pki.AllowTrustDomain(td)
	return func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if err := inTD(id, chains); err != nil {
			return err
		}
		if writers("", id) == nil {
			return nil
		}
		for _, a := range admins {
			if a(id, chains) == nil {
				return fmt.Errorf("pki: %w: %s is an admin API identity of this node, not a cluster member (set cluster.allow to admit it)", pki.ErrNotAuthorized, id)
			}
		}
		return nil
	}, nil
}

// errNotWriter refuses a write through a node whose own identity is not a
// writer: every other node would refuse the item it signed.
func errNotWriter(id spiffeid.ID, kind string, why error) error {
	return status.Errorf(codes.FailedPrecondition, "this node (%s) may not write a %s (%v): apply through a node that may (an edge, by default)", id, kind, why)
}
