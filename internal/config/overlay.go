package config

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Kinds of the resources the cluster replicates.
const (
	KindRoute    = "route"
	KindUpstream = "upstream"
)

// Resource is one replicated resource: the YAML of a routes[] or
// upstreams[] entry, or a tombstone.
type Resource struct {
	Kind, Name string
	Value      []byte
	Deleted    bool
}

// Precedence between a node's file and the cluster: the file is the node's
// own base (its listeners, and the routes and upstreams it serves until an
// operator changes them); the cluster's resources are applied over it on
// every node. A cluster resource replaces the file's entry of the same name
// or adds one; a cluster tombstone removes the file's entry. A file reload
// never writes to the cluster, and a resource applied through the cluster
// survives reloads until it is deleted there. A cluster route names its
// listeners and applies on the nodes that have one of them (edges and
// sidecars have different listeners).

// DecodeRoute decodes a route resource strictly: unknown fields and wrong
// kinds are errors with their line and column.
func DecodeRoute(name string, data []byte) (Route, error) {
	var r Route
	_, err := decodeStrict(name, data, &r)
	return r, err
}

// DecodeUpstream decodes an upstream resource strictly.
func DecodeUpstream(name string, data []byte) (Upstream, error) {
	var u Upstream
	_, err := decodeStrict(name, data, &u)
	return u, err
}

// EncodeResource is the YAML of a route or upstream, as replicated.
func EncodeResource(v any) ([]byte, error) { return yaml.Marshal(v) }

// Overlay returns base with the cluster's resources applied, defaulted and
// validated as a whole; base is not modified. When some resources do not
// fit (they do not decode, or the result does not validate: a route to an
// upstream this node lacks), it returns the config with every resource
// that fits and an error naming the others, so one bad resource from a
// peer never blocks the rest. The config is nil only when base itself is
// invalid.
func Overlay(base *Config, res []Resource) (*Config, error) {
	if cfg, err := overlay(base, res); err == nil {
		return cfg, nil
	}
	// Find the culprits: apply one resource at a time, keeping those that fit.
	var kept []Resource
	var errs Errors
	cfg := base
	for _, r := range res {
		next, err := overlay(base, append(kept, r))
		if err != nil {
			errs = appendErr(errs, "cluster "+r.Kind+" "+r.Name, err)
			continue
		}
		kept, cfg = append(kept, r), next
	}
	if len(kept) == 0 {
		if _, err := overlay(base, nil); err != nil {
			return nil, err
		}
	}
	return cfg, errs
}

func overlay(base *Config, res []Resource) (*Config, error) {
	cfg := *base
	cfg.Routes = slices.Clone(base.Routes)
	cfg.Upstreams = slices.Clone(base.Upstreams)
	var errs Errors
	for _, r := range res {
		where := fmt.Sprintf("cluster %s %q", r.Kind, r.Name)
		switch r.Kind {
		case KindRoute:
			i := slices.IndexFunc(cfg.Routes, func(x Route) bool { return x.Name == r.Name })
			if r.Deleted {
				if i >= 0 {
					cfg.Routes = slices.Delete(cfg.Routes, i, i+1)
				}
				continue
			}
			rt, err := DecodeRoute(where, r.Value)
			if err != nil {
				errs = appendErr(errs, where, err)
				continue
			}
			if rt.Name != r.Name {
				errs = append(errs, Error{File: where, Msg: fmt.Sprintf("its name is %q", rt.Name)})
				continue
			}
			if len(rt.Listeners) == 0 {
				errs = append(errs, Error{File: where, Msg: "a cluster route must name its listeners"})
				continue
			}
			// Edges and sidecars have different listeners: a route applies
			// on the nodes that have one of its listeners.
			rt.Listeners = slices.DeleteFunc(slices.Clone(rt.Listeners), func(l string) bool {
				return !slices.ContainsFunc(cfg.Listeners, func(x Listener) bool { return x.Name == l })
			})
			if len(rt.Listeners) == 0 {
				if i >= 0 {
					cfg.Routes = slices.Delete(cfg.Routes, i, i+1)
				}
				continue
			}
			if i >= 0 {
				cfg.Routes[i] = rt
			} else {
				cfg.Routes = append(cfg.Routes, rt)
			}
		case KindUpstream:
			i := slices.IndexFunc(cfg.Upstreams, func(x Upstream) bool { return x.Name == r.Name })
			if r.Deleted {
				if i >= 0 {
					cfg.Upstreams = slices.Delete(cfg.Upstreams, i, i+1)
				}
				continue
			}
			up, err := DecodeUpstream(where, r.Value)
			if err != nil {
				errs = appendErr(errs, where, err)
				continue
			}
			if up.Name != r.Name {
				errs = append(errs, Error{File: where, Msg: fmt.Sprintf("its name is %q", up.Name)})
				continue
			}
			if i >= 0 {
				cfg.Upstreams[i] = up
			} else {
				cfg.Upstreams = append(cfg.Upstreams, up)
			}
		default:
			errs = append(errs, Error{File: where, Msg: "unknown kind"})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	applyDefaults(&cfg)
	v := &validator{shape: &shape{file: "config with cluster resources", pos: map[string]*yaml.Node{}}}
	v.validate(&cfg)
	if len(v.errs) > 0 {
		return nil, v.sorted()
	}
	return &cfg, nil
}

// appendErr adds err's positioned errors as they are, or err under where.
func appendErr(errs Errors, where string, err error) Errors {
	if es, ok := err.(Errors); ok {
		return append(errs, es...)
	}
	return append(errs, Error{File: where, Msg: err.Error()})
}
