package config

import (
	"fmt"
	"slices"
	"strings"
)

// ApplyBFF returns routes with each member of a BFF group matched within
// its group: the group's hosts, its path prefix before the route's path,
// and its headers besides the route's. Routes of no group are returned as
// they are; routes is not modified. It fails on a route of an unknown group
// or one whose match cannot be placed in its group's (validation reports
// the same at the route's line).
func ApplyBFF(routes []Route, groups []BFF) ([]Route, error) {
	if len(groups) == 0 && !slices.ContainsFunc(routes, func(r Route) bool { return r.BFF != "" }) {
		return routes, nil
	}
	byName := make(map[string]*BFF, len(groups))
	for i := range groups {
		byName[groups[i].Name] = &groups[i]
	}
	out := slices.Clone(routes)
	for i := range out {
		r := &out[i]
		if r.BFF == "" {
			continue
		}
		g := byName[r.BFF]
		if g == nil {
			return nil, fmt.Errorf("route %q: unknown bff group %q", r.Name, r.BFF)
		}
		m, err := g.within(r.Match)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
		}
		r.Match = m
	}
	return out, nil
}

// within returns the match m of a member route placed in the group.
func (g *BFF) within(m Match) (Match, error) {
	if len(g.Hosts) > 0 {
		if len(m.Hosts) > 0 {
			return m, fmt.Errorf("bff group %q selects hosts: its routes set no match.hosts of their own", g.Name)
		}
		m.Hosts = slices.Clone(g.Hosts)
	}
	if prefix := strings.TrimSuffix(g.PathPrefix, "/"); prefix != "" {
		p := Path{Prefix: prefix}
		if m.Path != nil {
			p = *m.Path
			switch {
			case p.Regex != "":
				return m, fmt.Errorf("bff group %q has a path_prefix: a member's path cannot be a regex (use exact, prefix or template)", g.Name)
			case p.Exact != "":
				p.Exact = joinPrefix(prefix, p.Exact)
			case p.Prefix != "":
				p.Prefix = joinPrefix(prefix, p.Prefix)
			case p.Template != "":
				p.Template = joinPrefix(prefix, p.Template)
			}
		}
		m.Path = &p
	}
	if len(g.Headers) > 0 {
		m.Headers = append(slices.Clone(g.Headers), m.Headers...)
	}
	return m, nil
}

// joinPrefix puts path under prefix ("/m" and "/" give "/m").
func joinPrefix(prefix, path string) string {
	if path == "/" {
		return prefix
	}
	return prefix + path
}
