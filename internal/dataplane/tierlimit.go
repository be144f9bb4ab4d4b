package dataplane

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/ratelimit"
)

// Tier limits: every window of a consumer's tier is a cluster-wide limiter
// policy named tierPolicyName(tier, window), counted per consumer (per
// client IP for the anonymous consumer). The policy name holds no route, so
// a consumer's budget is shared by every route with tier limits.
//
// Responses carry the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-11 (structured-field Lists whose
// items are Strings naming a policy; no partition key is sent):
//
//	RateLimit-Policy: "free-1s";q=10;w=1, "free-1m0s";q=100;w=60
//	RateLimit: "free-1m0s";r=0;t=42
//
// RateLimit-Policy has one member per window of the tier, shortest window
// first; RateLimit names the most restrictive window only: the one that
// refused the request, else the one with the least quota left. r is the
// quota left (requests), t the seconds until that window's count resets,
// rounded up. On a refusal t is capped at Retry-After, since draft-11 §6
// wants Retry-After no earlier than the end of the effective window (the
// sliding-window estimate may admit again before the window resets).

// tierPolicyPrefix starts the limiter policy names of tier windows. Route
// policies are named after routes, whose names cannot hold ':'.
const tierPolicyPrefix = "tier:"

// maxPolicyNameLen is the limiter's bound on policy names (ratelimit's
// maxNameLen; SetPolicies refuses longer ones).
const maxPolicyNameLen = 255

// anonymousKeyPrefix starts the count key of an anonymous request, before
// its client IP: '=' is not allowed in consumer names, so a consumer named
// like an address never shares the count of anonymous callers from it.
const anonymousKeyPrefix = "ip="

// Canonical names of the response fields.
const (
	hdrRateLimitPolicy = "Ratelimit-Policy"
	hdrRateLimit       = "Ratelimit"
	hdrRetryAfter      = "Retry-After"
)

// tierPolicyName is the limiter policy of one window of a tier:
// "tier:<tier>:<window>", such as "tier:free:1m0s". A name that would pass
// the limiter's bound keeps a prefix of the tier's name followed by '~' and
// 16 hex digits of its SHA-256, so that every node derives the same name.
func tierPolicyName(tier string, window time.Duration) string {
	w := window.String()
	name := tierPolicyPrefix + tier + ":" + w
	if len(name) <= maxPolicyNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(tier))
	h := "~" + hex.EncodeToString(sum[:8])
	keep := max(maxPolicyNameLen-len(tierPolicyPrefix)-len(h)-1-len(w), 0)
	return tierPolicyPrefix + tier[:keep] + h + ":" + w
}

// tierPolicyConfigs are the limiter policies of tiers: one per window.
func tierPolicyConfigs(tiers []config.Tier) []ratelimit.PolicyConfig {
	var out []ratelimit.PolicyConfig
	for _, t := range tiers {
		iso := ratelimit.Open
		if t.OnIsolation == "closed" {
			iso = ratelimit.Closed
		}
		for _, lim := range t.Limits {
			out = append(out, ratelimit.PolicyConfig{
				Name:      tierPolicyName(t.Name, lim.Window.D()),
				Limit:     lim.Requests,
				Window:    lim.Window.D(),
				Isolation: iso,
			})
		}
	}
	return out
}

// tierWindow is what does not change per request about one window of a
// tier.
type tierWindow struct {
	policy string        // the limiter policy's name
	window time.Duration // for ordering
	// rlPrefix is the start of its RateLimit field value: `"free-1m0s";r=`.
	rlPrefix string
	// reason is the text of its refusals.
	reason string
}

// tierSpec is a tier with everything precomputed from its config.
type tierSpec struct {
	name    string
	windows []tierWindow // shortest first
	// policyHeader is the RateLimit-Policy value (len == cap, so an append
	// by a later writer copies instead of changing it for everyone).
	policyHeader []string
}

func newTierSpec(t config.Tier) tierSpec {
	s := tierSpec{name: t.Name}
	limits := slices.Clone(t.Limits)
	slices.SortStableFunc(limits, func(a, b config.TierLimit) int {
		return cmp.Compare(a.Window, b.Window)
	})
	var policyValue strings.Builder
	for i, lim := range limits {
		d := lim.Window.D()
		item := sfString(t.Name + "-" + shortDuration(d))
		s.windows = append(s.windows, tierWindow{
			policy:   tierPolicyName(t.Name, d),
			window:   d,
			rlPrefix: item + ";r=",
			reason:   fmt.Sprintf("rate limited: tier %s allows %d requests per %s", t.Name, lim.Requests, shortDuration(d)),
		})
		if i > 0 {
			policyValue.WriteString(", ")
		}
		policyValue.WriteString(item)
		policyValue.WriteString(";q=")
		policyValue.WriteString(strconv.FormatInt(lim.Requests, 10))
		policyValue.WriteString(";w=")
		policyValue.WriteString(strconv.FormatInt(ceilSeconds(d), 10))
	}
	s.policyHeader = []string{policyValue.String()}
	return s
}

// TierLimit is the tier_limit policy: on routes whose auth has tier_limits
// on (the default), it counts each request against every window of the
// consumer's tier, as set on the exchange by the auth stage before it, and
// refuses with 429 (tier_limited; gRPC: RESOURCE_EXHAUSTED) as soon as one
// window is spent, without calling the upstream. The count is per consumer,
// and per client IP for the anonymous consumer (or a request with a tier
// but no consumer), across every route with tier limits. A request whose
// tier is empty or names none of tiers passes unlimited.
//
// Windows are decided shortest first, stopping at the first refusal: a
// request admitted by shorter windows and refused by a longer one has cost
// one count in each of those shorter windows (the ones that recover
// soonest); a request refused by a short burst window costs nothing in the
// longer ones.
//
// Refusals carry Retry-After (whole seconds, at least 1), RateLimit-Policy
// and RateLimit; admitted responses carry the last two when the route's
// auth has rate_limit_headers. tiers must be the tiers of the config whose
// RateLimitPolicies the limiter holds when routes are built.
func TierLimit(l *ratelimit.Limiter, tiers []config.Tier) policy.Builder {
	specs := make([]tierSpec, 0, len(tiers))
	for _, t := range tiers {
		if len(t.Limits) > 0 {
			specs = append(specs, newTierSpec(t))
		}
	}
	section := func(r *config.Route) *config.RouteAuth {
		if r.Auth == nil || !r.Auth.TierLimitsOn() {
			return nil
		}
		return r.Auth
	}
	return policy.Of("tier_limit", section, func(a *config.RouteAuth, env policy.Env, next http.Handler) (http.Handler, error) {
		if len(specs) == 0 {
			return next, nil
		}
		// Policies are fetched at every build: SetPolicies may have replaced
		// them since the last snapshot.
		run := make(map[string]*tierRun, len(specs))
		for i := range specs {
			s := &specs[i]
			t := &tierRun{tierSpec: s, policies: make([]*ratelimit.Policy, len(s.windows))}
			for j, w := range s.windows {
				if t.policies[j] = l.Policy(w.policy); t.policies[j] == nil {
					return nil, fmt.Errorf("tier %q: no rate-limit policy %q", s.name, w.policy)
				}
			}
			run[s.name] = t
		}
		return &tierStage{tiers: run, headers: a.RateLimitHeaders, next: next}, nil
	})
}

// tierRun is a tier with its limiter policies, in the order of its windows.
type tierRun struct {
	*tierSpec
	policies []*ratelimit.Policy
}

// tierStage is the tier_limit stage of one route.
type tierStage struct {
	tiers   map[string]*tierRun
	headers bool // rate_limit_headers: on admitted responses too
	next    http.Handler
}

func (s *tierStage) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	x := exchange.From(req.Context())
	if x == nil {
		s.next.ServeHTTP(w, req)
		return
	}
	t := s.tiers[x.Tier]
	if t == nil {
		s.next.ServeHTTP(w, req)
		return
	}
	key := x.Consumer
	if key == config.ConsumerAnonymous || key == "" {
		key = anonymousKeyPrefix + x.ClientIP
	}
	var tight ratelimit.Decision
	ti := -1
	for i, p := range t.policies {
		d := p.Decide(key, 1)
		if !d.Allowed {
			t.refuse(w, x, i, d)
			return
		}
		if ti < 0 || d.Remaining < tight.Remaining {
			tight, ti = d, i
		}
	}
	if s.headers {
		h := w.Header()
		h[hdrRateLimitPolicy] = t.policyHeader
		h[hdrRateLimit] = []string{t.rateLimit(ti, tight.Remaining, ceilSeconds(tight.Reset))}
	}
	s.next.ServeHTTP(w, req)
}

// refuse answers a request that window i refused with decision d.
func (t *tierRun) refuse(w http.ResponseWriter, x *exchange.Exchange, i int, d ratelimit.Decision) {
	retry := max(ceilSeconds(d.RetryAfter), 1)
	h := w.Header()
	h[hdrRetryAfter] = []string{strconv.FormatInt(retry, 10)}
	h[hdrRateLimitPolicy] = t.policyHeader
	h[hdrRateLimit] = []string{t.rateLimit(i, 0, min(ceilSeconds(d.Reset), retry))}
	exchange.WriteReason(w, x, exchange.TierLimited, t.windows[i].reason)
}

// rateLimit is the RateLimit field value for window i: `"free-1m0s";r=R;t=T`.
func (t *tierRun) rateLimit(i int, remaining, reset int64) string {
	var buf [64]byte
	b := append(buf[:0], t.windows[i].rlPrefix...)
	b = strconv.AppendInt(b, max(remaining, 0), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, reset, 10)
	return string(b)
}

// ceilSeconds rounds d up to whole seconds (0 for d ≤ 0).
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// sfString serializes s as a structured-field String (RFC 9651 §4.1.6):
// quoted, with '"' and '\' escaped; bytes outside printable ASCII, which a
// String cannot hold, become '_'. (Tier names are tokens, so this only ever
// adds the quotes.)
func sfString(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// shortDuration writes a window as people do: 1m, 1h, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
