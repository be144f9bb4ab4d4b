package admin

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

func checkKind(kind string) error {
	if kind != config.KindRoute && kind != config.KindUpstream {
		return status.Errorf(codes.InvalidArgument, "kind %q: want %s or %s", kind, config.KindRoute, config.KindUpstream)
	}
	return nil
}

// resources lists the node's effective routes or upstreams, each marked
// with where it comes from, and the cluster's tombstones. Its errors are
// gRPC statuses: a bad kind is InvalidArgument.
func (s *Server) resources(kind string) ([]*adminv1.Resource, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	cfg := s.b.Effective()
	cluster := map[string]*adminv1.Resource{}
	for _, it := range s.b.ClusterResources(kind) {
		r := &adminv1.Resource{Kind: kind, Name: it.Name, Yaml: string(it.Value), Origin: "cluster", Version: it.Version.String()}
		if it.Deleted {
			r.Origin = "cluster-deleted"
		}
		cluster[it.Name] = r
	}
	var out []*adminv1.Resource
	add := func(name string, v any) error {
		if r := cluster[name]; r != nil && r.Origin == "cluster" {
			out = append(out, r)
			delete(cluster, name)
			return nil
		}
		y, err := encode(v)
		if err != nil {
			return err
		}
		out = append(out, &adminv1.Resource{Kind: kind, Name: name, Yaml: string(y), Origin: "file"})
		return nil
	}
	if cfg != nil {
		switch kind {
		case config.KindRoute:
			for i := range cfg.Routes {
				if err := add(cfg.Routes[i].Name, &cfg.Routes[i]); err != nil {
					return nil, status.Error(codes.Internal, err.Error())
				}
			}
		case config.KindUpstream:
			for i := range cfg.Upstreams {
				if err := add(cfg.Upstreams[i].Name, &cfg.Upstreams[i]); err != nil {
					return nil, status.Error(codes.Internal, err.Error())
				}
			}
		}
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

// ApplyResource implements adminv1.AdminServer.
func (s *Server) ApplyResource(_ context.Context, r *adminv1.ApplyResourceRequest) (*adminv1.Resource, error) {
	if err := checkKind(r.Kind); err != nil {
		return nil, err
	}
	if err := s.b.ApplyResource(r.Kind, []byte(r.Yaml)); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var name string
	switch r.Kind {
	case config.KindRoute:
		rt, _ := config.DecodeRoute(r.Kind, []byte(r.Yaml))
		name = rt.Name
	default:
		up, _ := config.DecodeUpstream(r.Kind, []byte(r.Yaml))
		name = up.Name
	}
	for _, it := range s.b.ClusterResources(r.Kind) {
		if it.Name == name {
			return &adminv1.Resource{Kind: r.Kind, Name: name, Yaml: string(it.Value), Origin: "cluster", Version: it.Version.String()}, nil
		}
	}
	return &adminv1.Resource{Kind: r.Kind, Name: name, Yaml: r.Yaml, Origin: "cluster"}, nil
}

// DeleteResource implements adminv1.AdminServer. Deleting a name that is
// only in the node's file writes a tombstone too: it hides the file's
// entry on every node.
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
	ok, err := s.b.DeleteResource(r.Kind, r.Name)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &adminv1.DeleteResourceResponse{Deleted: ok}, nil
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
