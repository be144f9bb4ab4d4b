package config

import (
	"fmt"
	"os"
	"slices"
	"strconv"
)

// fallback validates a route's fallback (defaults applied).
func (v *validator) fallback(p string, r *Route, upstreams map[string]int) {
	f := r.Fallback
	who := fmt.Sprintf("route %q", r.Name)
	if r.Aggregate != nil {
		v.at(p, "%s: fallback does not apply to a composite route: mark a call optional (aggregate.calls[].optional) to answer without it", who)
		return
	}
	if f.Upstream == "" && f.Response == nil && f.Stale == 0 {
		v.at(p, "%s: fallback needs stale, an upstream or a response", who)
	}
	if f.Stale > 0 && r.Cache == nil {
		v.at(p+".stale", "%s: fallback stale answers from the route's cache: add a cache section (routes[].cache)", who)
	}
	for j, on := range f.On {
		if msg := fallbackCondition(on); msg != "" {
			v.at(fmt.Sprintf("%s.on[%d]", p, j), "%s: %s", who, msg)
		}
	}
	if f.Upstream != "" {
		_, known := upstreams[f.Upstream]
		switch {
		case !known:
			v.at(p+".upstream", "%s: unknown fallback upstream %q", who, f.Upstream)
		case slices.Contains(r.UpstreamNames(), f.Upstream):
			v.at(p+".upstream", "%s: fallback upstream %q is one the route already sends to; name another", who, f.Upstream)
		}
	}
	if rs := f.Response; rs != nil {
		if rs.Status < 200 || rs.Status > 599 {
			v.at(p+".response.status", "%s: fallback status %d must be 200..599", who, rs.Status)
		}
		if rs.Body != "" && rs.BodyFile != "" {
			v.at(p+".response.body_file", "%s: set fallback body or body_file, not both", who)
		}
		for name := range rs.Headers {
			if !tokenRE.MatchString(name) {
				v.at(p+".response.headers", "%s: invalid header name %q", who, name)
			}
		}
	}
}

// fallbackCondition returns why on is not a fallback condition ("": it is).
func fallbackCondition(on string) string {
	switch on {
	case FallbackCircuitOpen, FallbackNoEndpoint, FallbackConnectFailure, FallbackReset, FallbackTimeout, FallbackOverloaded, Fallback5xx:
		return ""
	}
	code, err := strconv.Atoi(on)
	switch {
	case err != nil:
		return fmt.Sprintf("unknown fallback condition %q (circuit-open, no-endpoint, connect-failure, reset, timeout, overloaded, 5xx or a status 500..599)", on)
	case code >= 400 && code < 500:
		return fmt.Sprintf("fallback on %d: a 4xx is the upstream's answer to the request, and is never replaced", code)
	case code < 500 || code > 599:
		return fmt.Sprintf("fallback on status %d: only 500..599", code)
	}
	return ""
}

// readFallbackBodies reads fallback.response.body_file into Body.
func (v *validator) readFallbackBodies(c *Config) {
	for i := range c.Routes {
		f := c.Routes[i].Fallback
		if f == nil || f.Response == nil || f.Response.BodyFile == "" || f.Response.Body != "" {
			continue
		}
		p := fmt.Sprintf("routes[%d].fallback.response.body_file", i)
		st, err := os.Stat(f.Response.BodyFile)
		if err == nil && st.Size() > MaxFallbackBody {
			v.at(p, "route %q: fallback body_file %s is %d bytes; at most %d", c.Routes[i].Name, f.Response.BodyFile, st.Size(), MaxFallbackBody)
			continue
		}
		data, err := os.ReadFile(f.Response.BodyFile)
		if err != nil {
			v.at(p, "route %q: cannot read the fallback body: %v", c.Routes[i].Name, err)
			continue
		}
		f.Response.Body = string(data)
	}
}
