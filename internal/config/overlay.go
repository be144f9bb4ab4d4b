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
	KindConsumer = "consumer"
	KindTier     = "tier"
	KindAPIKey   = "apikey"
	// KindCachePurge is a cache purge: an event among the resources, never
	// part of a config (see the node's purge.go).
	KindCachePurge = "cache-purge"
)

// Kinds are the kinds of resources, in the order they are applied: a route
// needs its upstream, a consumer its tier, an API key its consumer.
var Kinds = []string{KindUpstream, KindRoute, KindTier, KindConsumer, KindAPIKey}

// Resource is one replicated resource: the YAML of a routes[],
// upstreams[], consumers[] or tiers[] entry, or of an API key (APIKey), or
// a tombstone.
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
// sidecars have different listeners). Consumers, tiers and API keys follow
// the same rules, with the exceptions in overlay_auth.go: a cluster
// consumer keeps the file's keys of its name, and an API key resource
// replaces (or, deleted, revokes) every key of its id, the file's too.

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

// EncodeResource is the YAML of a resource, as replicated.
func EncodeResource(v any) ([]byte, error) { return yaml.Marshal(v) }

// Overlay returns base with the cluster's resources applied, defaulted and
// validated as a whole; base is not modified. When some resources do not
// fit (they do not decode, an API key names no consumer, or the result
// does not validate: a route to an upstream this node lacks), it returns
// the config with every resource that fits and an error naming the
// others, so one bad resource from a peer never blocks the rest. The
// config is nil only when base itself is invalid. Resources may come in
// any order: they are applied in the order of Kinds.
func Overlay(base *Config, res []Resource) (*Config, error) {
	res = slices.Clone(res)
	slices.SortStableFunc(res, func(a, b Resource) int { return kindRank(a.Kind) - kindRank(b.Kind) })
	cfg, bad, err := overlay(base, res)
	if err == nil {
		if len(bad) > 0 {
			return cfg, bad
		}
		return cfg, nil
	}
	// The result does not validate: find the culprits, applying one
	// resource at a time and keeping those that fit. API keys cannot break
	// the validation (each is checked as it is applied), so they go in
	// together, last, and one at a time only if that fails after all.
	var kept, keys []Resource
	var errs Errors
	cfg = base
	try := func(r Resource) {
		next, bad, err := overlay(base, append(kept, r))
		if err == nil && len(bad) == 0 {
			kept, cfg = append(kept, r), next
			return
		}
		errs = append(errs, bad...)
		if err != nil {
			errs = appendErr(errs, "cluster "+r.Kind+" "+r.Name, err)
		}
	}
	for _, r := range res {
		if r.Kind == KindAPIKey {
			keys = append(keys, r)
			continue
		}
		try(r)
	}
	if len(keys) > 0 {
		if next, bad, err := overlay(base, append(slices.Clip(kept), keys...)); err == nil {
			kept, cfg = append(kept, keys...), next
			errs = append(errs, bad...)
		} else {
			for _, r := range keys {
				try(r)
			}
		}
	}
	if len(kept) == 0 {
		if _, _, err := overlay(base, nil); err != nil {
			return nil, err
		}
	}
	if len(errs) == 0 {
		return cfg, nil
	}
	return cfg, errs
}

// kindRank is the place of kind in Kinds (unknown kinds last).
func kindRank(kind string) int {
	if i := slices.Index(Kinds, kind); i >= 0 {
		return i
	}
	return len(Kinds)
}

// overlay applies res over base. A resource that does not fit by itself
// (it does not decode, bears another name, an API key's consumer does not
// exist) is left out and reported in bad; err is the validation of the
// whole, and the config is nil when it fails.
func overlay(base *Config, res []Resource) (cfg *Config, bad Errors, err error) {
	c := *base
	c.Routes = slices.Clone(base.Routes)
	c.Upstreams = slices.Clone(base.Upstreams)
	c.Tiers = slices.Clone(base.Tiers)
	c.Consumers = slices.Clone(base.Consumers)
	var keys []Resource
	for _, r := range res {
		where := fmt.Sprintf("cluster %s %q", r.Kind, r.Name)
		var err error
		switch r.Kind {
		case KindRoute:
			err = overlayRoute(&c, r, where)
		case KindUpstream:
			err = overlayUpstream(&c, r, where)
		case KindTier:
			err = overlayTier(&c, r, where)
		case KindConsumer:
			err = overlayConsumer(&c, r, where)
		case KindAPIKey:
			keys = append(keys, r) // once every consumer is in place
		default:
			err = Error{File: where, Msg: "unknown kind"}
		}
		if err != nil {
			bad = appendErr(bad, where, err)
		}
	}
	bad = append(bad, overlayKeys(&c, keys)...)
	applyDefaults(&c)
	v := &validator{shape: &shape{file: "config with cluster resources", pos: map[string]*yaml.Node{}}}
	v.validate(&c)
	if len(v.errs) > 0 {
		return nil, bad, v.sorted()
	}
	return &c, bad, nil
}

func overlayRoute(c *Config, r Resource, where string) error {
	i := slices.IndexFunc(c.Routes, func(x Route) bool { return x.Name == r.Name })
	if r.Deleted {
		if i >= 0 {
			c.Routes = slices.Delete(c.Routes, i, i+1)
		}
		return nil
	}
	rt, err := DecodeRoute(where, r.Value)
	if err != nil {
		return err
	}
	if rt.Name != r.Name {
		return Error{File: where, Msg: fmt.Sprintf("its name is %q", rt.Name)}
	}
	if len(rt.Listeners) == 0 {
		return Error{File: where, Msg: "a cluster route must name its listeners"}
	}
	// Edges and sidecars have different listeners: a route applies on the
	// nodes that have one of its listeners.
	rt.Listeners = slices.DeleteFunc(slices.Clone(rt.Listeners), func(l string) bool {
		return !slices.ContainsFunc(c.Listeners, func(x Listener) bool { return x.Name == l })
	})
	if len(rt.Listeners) == 0 {
		if i >= 0 {
			c.Routes = slices.Delete(c.Routes, i, i+1)
		}
		return nil
	}
	if i >= 0 {
		c.Routes[i] = rt
	} else {
		c.Routes = append(c.Routes, rt)
	}
	return nil
}

func overlayUpstream(c *Config, r Resource, where string) error {
	i := slices.IndexFunc(c.Upstreams, func(x Upstream) bool { return x.Name == r.Name })
	if r.Deleted {
		if i >= 0 {
			c.Upstreams = slices.Delete(c.Upstreams, i, i+1)
		}
		return nil
	}
	up, err := DecodeUpstream(where, r.Value)
	if err != nil {
		return err
	}
	if up.Name != r.Name {
		return Error{File: where, Msg: fmt.Sprintf("its name is %q", up.Name)}
	}
	if i >= 0 {
		c.Upstreams[i] = up
	} else {
		c.Upstreams = append(c.Upstreams, up)
	}
	return nil
}

// appendErr adds err's positioned errors as they are, or err under where.
func appendErr(errs Errors, where string, err error) Errors {
	switch e := err.(type) {
	case Errors:
		return append(errs, e...)
	case Error:
		return append(errs, e)
	}
	return append(errs, Error{File: where, Msg: err.Error()})
}
