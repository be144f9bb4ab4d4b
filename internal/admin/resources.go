package admin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/replica"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

func checkKind(kind string) error {
	if !slices.Contains(config.Kinds, kind) {
		return status.Errorf(codes.InvalidArgument, "kind %q: want one of %s", kind, strings.Join(config.Kinds, ", "))
	}
	return nil
}

// keyView is what the API shows of an API key: its id and its consumer,
// never more (the hash is no secret, but nobody needs it back).
func keyView(id, consumer string) string {
	if consumer == "" {
		return fmt.Sprintf("id: %s\n", id)
	}
	return fmt.Sprintf("id: %s\nconsumer: %s\n", id, consumer)
}

// clusterView is a cluster resource as the API shows it.
func clusterView(it replica.Item) *adminv1.Resource {
	r := &adminv1.Resource{Kind: it.Kind, Name: it.Name, Yaml: string(it.Value), Origin: "cluster", Version: it.Version.String()}
	if it.Deleted {
		r.Origin = "cluster-deleted"
	}
	if it.Kind == config.KindAPIKey {
		k, _ := config.DecodeAPIKey(it.Kind, it.Value) // a bad one shows its id only
		r.Yaml = keyView(it.Name, k.Consumer)
	}
	return r
}

// resources lists the node's effective resources of kind, each marked
// with where it comes from, and the cluster's tombstones. Its errors are
// gRPC statuses: a bad kind is InvalidArgument.
func (s *Server) resources(kind string) ([]*adminv1.Resource, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	cfg := s.b.Effective()
	cluster := map[string]*adminv1.Resource{}
	for _, it := range s.b.ClusterResources(kind) {
		cluster[it.Name] = clusterView(it)
	}
	var out []*adminv1.Resource
	add := func(name string, v any) error {
		if r := cluster[name]; r != nil && r.Origin == "cluster" {
			out = append(out, r)
			delete(cluster, name)
			return nil
		}
		var y []byte
		if str, ok := v.(string); ok {
			y = []byte(str)
		} else {
			var err error
			if y, err = encode(v); err != nil {
				return err
			}
		}
		out = append(out, &adminv1.Resource{Kind: kind, Name: name, Yaml: string(y), Origin: "file"})
		return nil
	}
	var err error
	if cfg != nil {
		switch kind {
		case config.KindRoute:
			for i := range cfg.Routes {
				rt := cfg.Routes[i]
				if len(rt.Listeners) == 0 {
					// A file's route without listeners serves on all of
					// them; as a cluster resource it must name them: shown
					// so, it applies back as it is.
					for _, l := range cfg.Listeners {
						rt.Listeners = append(rt.Listeners, l.Name)
					}
				}
				err = cmp.Or(err, add(rt.Name, &rt))
			}
		case config.KindUpstream:
			for i := range cfg.Upstreams {
				err = cmp.Or(err, add(cfg.Upstreams[i].Name, &cfg.Upstreams[i]))
			}
		case config.KindTier:
			for i := range cfg.Tiers {
				err = cmp.Or(err, add(cfg.Tiers[i].Name, &cfg.Tiers[i]))
			}
		case config.KindConsumer:
			// Without its keys: they are apikey resources, listed by id.
			for _, c := range cfg.Consumers {
				c.APIKeys = nil
				err = cmp.Or(err, add(c.Name, &c))
			}
		case config.KindAPIKey:
			for _, c := range cfg.Consumers {
				for _, h := range c.APIKeys {
					id := config.KeyID(h)
					err = cmp.Or(err, add(id, keyView(id, c.Name)))
				}
			}
		}
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	// What is left: tombstones, and cluster resources this node does not
	// serve (a route for listeners it lacks, or one that does not fit it).
	for _, r := range cluster {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ListResources implements adminv1.AdminServer.
func (s *Server) ListResources(_ context.Context, r *adminv1.ListResourcesRequest) (*adminv1.ListResourcesResponse, error) {
	res, err := s.resources(r.Kind)
	if err != nil {
		return nil, err
	}
	return &adminv1.ListResourcesResponse{Resources: res}, nil
}

// GetResource implements adminv1.AdminServer. An unknown name is
// NotFound with the closest names the node knows.
func (s *Server) GetResource(_ context.Context, r *adminv1.GetResourceRequest) (*adminv1.Resource, error) {
	res, err := s.resources(r.Kind)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, x := range res {
		if x.Name == r.Name && x.Origin != "cluster-deleted" {
			return x, nil
		}
		if x.Origin != "cluster-deleted" {
			names = append(names, x.Name)
		}
	}
	return nil, notFound(r.Kind, r.Name, names)
}

// notFound names the closest known names, so a typo is one step from a fix.
func notFound(kind, name string, known []string) error {
	msg := fmt.Sprintf("unknown %s %q", kind, name)
	if close := closest(name, known, 3); len(close) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(close, ", "))
	} else if len(known) > 0 {
		msg += fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
	}
	return status.Error(codes.NotFound, msg)
}

// ApplyResource implements adminv1.AdminServer. An API key must come as
// its hash (config.APIKey): a key in clear is refused, never stored or
// logged. Its id must be new: ids of keys in use or revoked are not given
// out again (AlreadyExists; meshctl then makes another key).
func (s *Server) ApplyResource(_ context.Context, r *adminv1.ApplyResourceRequest) (*adminv1.Resource, error) {
	if err := checkKind(r.Kind); err != nil {
		return nil, err
	}
	name, err := config.ResourceName(r.Kind, []byte(r.Yaml))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var key config.APIKey
	if r.Kind == config.KindAPIKey {
		key, _ = config.DecodeAPIKey(r.Kind, []byte(r.Yaml))
		if err := s.checkNewKey(name, key.Hash); err != nil {
			return nil, err
		}
	}
	if err := s.b.ApplyResource(r.Kind, []byte(r.Yaml)); err != nil {
		if r.Kind == config.KindAPIKey {
			if cfg := s.b.Effective(); cfg != nil && cfg.Consumer(key.Consumer) == nil && strings.Contains(err.Error(), "unknown consumer") {
				var names []string
				for _, c := range cfg.Consumers {
					names = append(names, c.Name)
				}
				return nil, notFound(config.KindConsumer, key.Consumer, names)
			}
		}
		return nil, backendError(codes.InvalidArgument, err)
	}
	for _, it := range s.b.ClusterResources(r.Kind) {
		if it.Name == name {
			return clusterView(it), nil
		}
	}
	return clusterView(replica.Item{Kind: r.Kind, Name: name, Value: []byte(r.Yaml)}), nil
}

// checkNewKey refuses a key whose id is taken by another key, in the
// cluster or a node's file, or was revoked: a revocation must stay one.
func (s *Server) checkNewKey(id, hash string) error {
	for _, it := range s.b.ClusterResources(config.KindAPIKey) {
		if it.Name != id {
			continue
		}
		if it.Deleted {
			return status.Errorf(codes.AlreadyExists, "API key %s was revoked, and ids are not given out again: make another key", id)
		}
		if k, err := config.DecodeAPIKey(it.Kind, it.Value); err != nil || k.Hash != hash {
			return status.Errorf(codes.AlreadyExists, "the id %s is another key's: make another key", id)
		}
	}
	if cfg := s.b.Effective(); cfg != nil {
		for _, c := range cfg.Consumers {
			for _, h := range c.APIKeys {
				if h != hash && config.KeyID(h) == id {
					return status.Errorf(codes.AlreadyExists, "the id %s is another key's: make another key", id)
				}
			}
		}
	}
	return nil
}

// DeleteResource implements adminv1.AdminServer. Deleting a name that is
// only in the node's file writes a tombstone too: it hides the file's
// entry on every node. Deleting an API key revokes it; deleting a consumer
// revokes its keys first.
func (s *Server) DeleteResource(_ context.Context, r *adminv1.DeleteResourceRequest) (*adminv1.DeleteResourceResponse, error) {
	res, err := s.resources(r.Kind)
	if err != nil {
		return nil, err
	}
	var names []string
	found := false
	for _, x := range res {
		if x.Origin == "cluster-deleted" {
			continue
		}
		names = append(names, x.Name)
		found = found || x.Name == r.Name
	}
	if !found {
		return nil, notFound(r.Kind, r.Name, names)
	}
	if r.Kind == config.KindConsumer {
		// A consumer's keys go with it, revoked for good: they must not
		// come back with a consumer of the same name.
		for _, id := range s.keysOf(r.Name) {
			if _, err := s.b.DeleteResource(config.KindAPIKey, id); err != nil {
				if st, ok := status.FromError(err); ok {
					return nil, st.Err()
				}
				return nil, status.Errorf(codes.FailedPrecondition, "revoking key %s of consumer %s: %v", id, r.Name, err)
			}
		}
	}
	ok, err := s.b.DeleteResource(r.Kind, r.Name)
	if err != nil {
		return nil, backendError(codes.FailedPrecondition, err)
	}
	return &adminv1.DeleteResourceResponse{Deleted: ok}, nil
}

// keysOf are the ids of consumer's keys: those this node applies (from
// its file or the cluster) and the cluster's others naming it.
func (s *Server) keysOf(consumer string) []string {
	var ids []string
	if cfg := s.b.Effective(); cfg != nil {
		if c := cfg.Consumer(consumer); c != nil {
			for _, h := range c.APIKeys {
				ids = append(ids, config.KeyID(h))
			}
		}
	}
	for _, it := range s.b.ClusterResources(config.KindAPIKey) {
		if k, err := config.DecodeAPIKey(it.Kind, it.Value); err == nil && !it.Deleted && k.Consumer == consumer && !slices.Contains(ids, it.Name) {
			ids = append(ids, it.Name)
		}
	}
	return ids
}

// closest returns up to n names within a small edit distance of name,
// nearest first.
func closest(name string, names []string, n int) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, x := range names {
		d := editDistance(name, x)
		if d <= max(2, len(name)/3) || strings.Contains(x, name) || strings.Contains(name, x) {
			cs = append(cs, cand{x, d})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].d < cs[j].d || cs[i].d == cs[j].d && cs[i].name < cs[j].name })
	var out []string
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, cs[i].name)
	}
	return out
}

// editDistance is Levenshtein's distance.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// backendError is a backend's error as a gRPC status: the backend's own
// status when it chose one (a node that may not write to the cluster
// answers FAILED_PRECONDITION, whatever the change), else code.
func backendError(code codes.Code, err error) error {
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	return status.Error(code, err.Error())
}
