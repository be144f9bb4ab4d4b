package dataplane

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/ratelimit"
)

// RateLimitPolicies are the limiter policies of cfg: one per route with a
// rate_limit, named after the route, and one per window of each tier, named
// "tier:<tier>:<window>" (tierPolicyName, such as "tier:free:1m0s").
func RateLimitPolicies(cfg *config.Config) []ratelimit.PolicyConfig {
	var out []ratelimit.PolicyConfig
	for _, r := range cfg.Routes {
		if rl := r.RateLimit; rl != nil {
			iso := ratelimit.Open
			if rl.OnIsolation == "closed" {
				iso = ratelimit.Closed
			}
			out = append(out, ratelimit.PolicyConfig{Name: r.Name, Limit: rl.Requests, Window: rl.Window.D(), Isolation: iso})
		}
	}
	return append(out, tierPolicyConfigs(cfg.Tiers)...)
}

// RateLimit is the policy of routes with a rate_limit: it decides on the
// limiter's cluster-wide estimate before the request goes anywhere, so a
// refused request never touches the upstream. Answers carry the draft
// RateLimit-* headers; a refusal is 429 with Retry-After (gRPC:
// RESOURCE_EXHAUSTED).
func RateLimit(l *ratelimit.Limiter) policy.Builder {
	section := func(r *config.Route) *config.RateLimit { return r.RateLimit }
	return policy.Of("rate_limit", section, func(rl *config.RateLimit, env policy.Env, next http.Handler) (http.Handler, error) {
		p := l.Policy(env.Route)
		if p == nil {
			return nil, fmt.Errorf("no rate-limit policy for the route")
		}
		key := limitKey(rl.Key)
		limit := []string{strconv.FormatInt(rl.Requests, 10)}
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			x := exchange.From(req.Context())
			d := p.Decide(key(req, x), 1)
			h := w.Header()
			h["Ratelimit-Limit"] = limit
			h["Ratelimit-Remaining"] = []string{strconv.FormatInt(max(d.Remaining, 0), 10)}
			h["Ratelimit-Reset"] = []string{seconds(d.Reset)}
			if !d.Allowed {
				h["Retry-After"] = []string{seconds(d.RetryAfter)}
				exchange.Write(w, x, exchange.RateLimited)
				return
			}
			next.ServeHTTP(w, req)
		}), nil
	})
}

// limitKey returns the function that names a request's count.
func limitKey(spec string) func(*http.Request, *exchange.Exchange) string {
	switch {
	case spec == "client_ip":
		return func(_ *http.Request, x *exchange.Exchange) string {
			if x == nil {
				return ""
			}
			return x.ClientIP
		}
	case strings.HasPrefix(spec, "header:"):
		name := http.CanonicalHeaderKey(strings.TrimPrefix(spec, "header:"))
		return func(r *http.Request, _ *exchange.Exchange) string {
			if v := r.Header[name]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
	default: // "route": one count
		return func(*http.Request, *exchange.Exchange) string { return "" }
	}
}

// seconds rounds up to whole seconds, as the headers want.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}
