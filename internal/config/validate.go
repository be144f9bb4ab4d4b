package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// validator checks a decoded Config and reports each problem at the position
// of the field it concerns.
type validator struct{ *shape }

// at reports msg at the value of the field path (or its nearest parent that
// appeared in the file).
func (v *validator) at(path, format string, args ...any) {
	p := path
	for {
		if n, ok := v.pos[p]; ok {
			v.errorf(n, format, args...)
			return
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			v.errorf(nil, format, args...)
			return
		}
		p = p[:i]
	}
}

func (v *validator) line(path string) int {
	if n, ok := v.pos[path]; ok {
		return n.Line
	}
	return 0
}

var tokenRE = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
var paramRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

// RetryConditions are the accepted values of retry.on.
var RetryConditions = map[string]bool{
	"connect-failure": true, "reset": true, "5xx": true, "502": true, "503": true, "504": true,
	"per-try-timeout": true,
	"grpc-cancelled":  true, "grpc-deadline-exceeded": true, "grpc-resource-exhausted": true,
	"grpc-unavailable": true, "grpc-internal": true,
}

func (v *validator) validate(c *Config) {
	if c.Admin.Address != "" {
		v.hostPort("admin.address", c.Admin.Address)
	}
	if api := c.Admin.API; api != nil {
		v.hostPort("admin.api.address", api.Address)
		if c.Identity == nil {
			v.at("admin.api", "admin.api is served over mTLS: it needs the node's identity (set identity)")
		}
		if len(api.Operators) == 0 && len(api.Viewers) == 0 {
			v.at("admin.api", "admin.api: list operators or viewers (SPIFFE ID patterns); nobody else may call it")
		}
		for field, ids := range map[string][]string{"operators": api.Operators, "viewers": api.Viewers} {
			for i, id := range ids {
				if _, err := pki.ParsePattern(id); err != nil {
					v.at(fmt.Sprintf("admin.api.%s[%d]", field, i), "%v", err)
				}
			}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.at("log.level", "log.level %q must be debug, info, warn or error", c.Log.Level)
	}
	for i, cidr := range c.Server.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			if _, err2 := netip.ParseAddr(cidr); err2 != nil {
				v.at(fmt.Sprintf("server.trusted_proxies[%d]", i), "invalid CIDR or address %q", cidr)
			}
		}
	}

	listeners := map[string]int{}
	addresses := map[string]int{}
	if len(c.Listeners) == 0 {
		v.at("listeners", "at least one listener is required")
	}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		v.name(p, l.Name, "listener", listeners, i)
		v.hostPort(p+".address", l.Address)
		if j, dup := addresses[l.Address]; dup && !strings.HasSuffix(l.Address, ":0") {
			v.at(p+".address", "listener %q: address %s is also used by listener %q", l.Name, l.Address, c.Listeners[j].Name)
		} else {
			addresses[l.Address] = i
		}
		switch l.Protocol {
		case "http":
			if l.TLS != nil || l.MTLS != nil {
				v.at(p+".protocol", "listener %q: tls or mtls is set but protocol is http (use https)", l.Name)
			}
		case "https":
			if l.MTLS != nil {
				if l.TLS != nil {
					v.at(p+".mtls", "listener %q: mtls uses the node's identity; remove tls", l.Name)
				}
				if c.Identity == nil {
					v.at(p+".mtls", "listener %q: mtls needs the node's identity (set identity)", l.Name)
				}
				for j, id := range l.MTLS.Allow {
					if _, err := pki.ParsePattern(id); err != nil {
						v.at(fmt.Sprintf("%s.mtls.allow[%d]", p, j), "%v", err)
					}
				}
				for j, id := range l.MTLS.ForwardedFrom {
					if _, err := pki.ParsePattern(id); err != nil {
						v.at(fmt.Sprintf("%s.mtls.forwarded_from[%d]", p, j), "%v", err)
					}
				}
			} else if l.TLS == nil || len(l.TLS.Certificates) == 0 {
				v.at(p, "listener %q: protocol https needs tls.certificates (or mtls)", l.Name)
			}
		default:
			v.at(p+".protocol", "listener %q: protocol %q must be http or https", l.Name, l.Protocol)
		}
		if l.Consumers != nil {
			if l.MTLS == nil {
				v.at(p+".consumers", "listener %q: consumers trusts callers by SPIFFE ID: it needs mtls", l.Name)
			}
			v.listenerConsumers(p+".consumers", l.Consumers)
		}
		if l.TLS != nil {
			if l.TLS.MinVersion != "1.2" && l.TLS.MinVersion != "1.3" {
				v.at(p+".tls.min_version", "tls.min_version %q must be \"1.2\" or \"1.3\"", l.TLS.MinVersion)
			}
			for j, cert := range l.TLS.Certificates {
				cp := fmt.Sprintf("%s.tls.certificates[%d]", p, j)
				if _, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile); err != nil {
					v.at(cp, "certificate: %v", err)
				}
			}
		}
	}

	if id := c.Identity; id != nil {
		switch {
		case (id.WorkloadAPI == "") == (id.Files == nil):
			v.at("identity", "identity needs exactly one of workload_api, files")
		case id.WorkloadAPI != "":
			if !strings.HasPrefix(id.WorkloadAPI, "unix://") && !strings.HasPrefix(id.WorkloadAPI, "tcp://") {
				v.at("identity.workload_api", "workload_api %q must be unix:///path or tcp://host:port", id.WorkloadAPI)
			}
			if id.SpiffeID != "" {
				if _, err := spiffeid.FromString(id.SpiffeID); err != nil {
					v.at("identity.spiffe_id", "invalid SPIFFE ID %q: %v", id.SpiffeID, err)
				}
			}
		default:
			if id.SpiffeID != "" {
				v.at("identity.spiffe_id", "spiffe_id applies to workload_api only (files hold one SVID)")
			}
			f := id.Files
			for field, path := range map[string]string{"cert_file": f.CertFile, "key_file": f.KeyFile, "bundle_file": f.BundleFile} {
				if path == "" {
					v.at("identity.files", "identity.files.%s is required", field)
				} else if _, err := os.Stat(path); err != nil {
					v.at("identity.files."+field, "%v", err)
				}
			}
		}
	}
	if c.Cluster != nil {
		v.cluster(c)
	}
	if c.Tracing != nil {
		v.tracing(c.Tracing)
	}
	upstreams := map[string]int{}
	for i, u := range c.Upstreams {
		p := fmt.Sprintf("upstreams[%d]", i)
		v.name(p, u.Name, "upstream", upstreams, i)
		v.upstream(p, &u)
		if u.Service != nil && c.Cluster == nil {
			v.at(p+".service", "upstream %q: service discovery needs the node to join a cluster (set cluster)", u.Name)
		}
		if u.TLS != nil {
			if c.Identity == nil {
				v.at(p+".tls", "upstream %q: tls needs the node's identity (set identity)", u.Name)
			}
			if len(u.TLS.SpiffeIDs) == 0 && u.Service == nil {
				v.at(p+".tls", "upstream %q: tls.spiffe_ids must name the SPIFFE IDs the endpoints may present", u.Name)
			}
			for j, id := range u.TLS.SpiffeIDs {
				if _, err := pki.ParsePattern(id); err != nil {
					v.at(fmt.Sprintf("%s.tls.spiffe_ids[%d]", p, j), "%v", err)
				}
			}
		}
	}

	v.cacheStore(c)
	auth := v.authSections(c)
	cx := v.compositeSections(c, upstreams)
	routes := map[string]int{}
	matches := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		v.name(p, r.Name, "route", routes, i)
		for j, ln := range r.Listeners {
			if _, ok := listeners[ln]; !ok {
				v.at(fmt.Sprintf("%s.listeners[%d]", p, j), "route %q: unknown listener %q", r.Name, ln)
			}
		}
		params := v.match(p+".match", r)
		switch {
		case r.Aggregate != nil:
			v.composite(p, r, params, auth, cx)
		case r.Upstream != "" && len(r.Split) > 0:
			v.at(p+".split", "route %q: set upstream or split, not both", r.Name)
		case len(r.Split) > 0:
			v.split(p+".split", r, upstreams)
		case r.Upstream == "":
			v.at(p, "route %q: upstream (or split) is required, or aggregate for a composite route", r.Name)
		default:
			if _, ok := upstreams[r.Upstream]; !ok {
				v.at(p+".upstream", "route %q: unknown upstream %q", r.Name, r.Upstream)
			}
		}
		if rl := r.RateLimit; rl != nil {
			v.rateLimit(p+".rate_limit", r.Name, rl)
		}
		if r.Fallback != nil {
			v.fallback(p+".fallback", r, upstreams)
		}
		if r.Cache != nil {
			v.cache(p+".cache", r, c.Cache)
		}
		if r.Auth != nil {
			v.routeAuth(p+".auth", r, auth)
		}
		v.headerOps(p+".request_headers", r.RequestHeaders)
		v.headerOps(p+".response_headers", r.ResponseHeaders)
		if r.PerTryTimeout > r.Timeout {
			v.at(p+".per_try_timeout", "route %q: per_try_timeout %s exceeds timeout %s", r.Name, r.PerTryTimeout.D(), r.Timeout.D())
		}
		if r.Aggregate == nil { // a composite refuses these (routeFields)
			v.rewrite(p+".rewrite", r, params)
			if r.Transform != nil {
				v.transform(p+".transform", r, params, auth)
			}
			if r.Retry != nil {
				v.retry(p+".retry", fmt.Sprintf("route %q", r.Name), r.Retry)
			}
		}
		// Members of BFF groups are compared by the match they get in
		// their group: the same path in two groups is no duplicate.
		key := matchKey(v.routeBFF(p, r, cx))
		if j, dup := matches[key]; dup {
			v.at(p+".match", "route %q has the same match as route %q (line %d); one of them can never be chosen",
				r.Name, c.Routes[j].Name, v.line(fmt.Sprintf("routes[%d]", j)))
		} else {
			matches[key] = i
		}
	}
}

// retry validates a retry policy, defaults applied: a route's, or a
// composite call's. who names its owner in messages.
func (v *validator) retry(p, who string, rt *Retry) {
	if rt.Attempts < 1 || rt.Attempts > 10 {
		v.at(p+".attempts", "%s: retry.attempts %d must be 1..10", who, rt.Attempts)
	}
	for j, on := range rt.On {
		if !RetryConditions[on] {
			v.at(fmt.Sprintf("%s.on[%d]", p, j), "%s: unknown retry condition %q", who, on)
		}
	}
	if rt.BackoffMax < rt.BackoffBase {
		v.at(p+".backoff_max", "%s: retry.backoff_max is less than backoff_base", who)
	}
}

// split validates a route's weighted split: 1..MaxSplitTargets targets, each
// a distinct known upstream with a weight 0..MaxSplitWeight, not all 0.
func (v *validator) split(p string, r *Route, upstreams map[string]int) {
	if n := len(r.Split); n > MaxSplitTargets {
		v.at(p, "route %q: split has %d targets; at most %d are allowed", r.Name, n, MaxSplitTargets)
	}
	seen := map[string]int{}
	total, weighed := 0, 0 // the sum of the valid weights, and their number
	for j, t := range r.Split {
		tp := fmt.Sprintf("%s[%d]", p, j)
		_, known := upstreams[t.Upstream]
		k, dup := seen[t.Upstream]
		switch {
		case t.Upstream == "":
			v.at(tp, "route %q: split[%d].upstream is required", r.Name, j)
		case !known:
			v.at(tp+".upstream", "route %q: unknown upstream %q in split", r.Name, t.Upstream)
		case dup:
			v.at(tp+".upstream", "route %q: upstream %q appears twice in split (split[%d] and split[%d]); give it one weight",
				r.Name, t.Upstream, k, j)
		default:
			seen[t.Upstream] = j
		}
		switch w := t.Weight; {
		case w == nil:
			v.at(tp, "route %q: split[%d].weight is required (0..%d; 0 sends the upstream nothing)", r.Name, j, MaxSplitWeight)
		case *w < 0 || *w > MaxSplitWeight:
			v.at(tp+".weight", "route %q: split weight %d must be 0..%d", r.Name, *w, MaxSplitWeight)
		default:
			total += *w
			weighed++
		}
	}
	if total == 0 && weighed == len(r.Split) {
		v.at(p, "route %q: every split weight is 0; at least one must be above 0", r.Name)
	}
}

func (v *validator) name(path, name, kind string, seen map[string]int, i int) {
	switch {
	case name == "":
		v.at(path, "%s name is required", kind)
	case !tokenRE.MatchString(name):
		v.at(path+".name", "%s name %q may hold only letters, digits and -._~", kind, name)
	default:
		if j, dup := seen[name]; dup {
			v.at(path+".name", "duplicate %s name %q (first at line %d)", kind, name, v.line(fmt.Sprintf("%ss[%d].name", kind, j)))
			return
		}
		seen[name] = i
	}
}

func (v *validator) hostPort(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.at(path, "address %q must be host:port", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.at(path, "address %q: invalid port %q", addr, port)
	}
	_ = host
}

func (v *validator) upstream(p string, u *Upstream) {
	switch {
	case u.Service != nil && len(u.Endpoints) > 0:
		v.at(p+".service", "upstream %q: set endpoints or service, not both", u.Name)
	case u.Service != nil:
		if !tokenRE.MatchString(u.Service.Name) {
			v.at(p+".service.name", "upstream %q: service.name %q must be a name of letters, digits and -._~", u.Name, u.Service.Name)
		}
		if u.Service.Subset != "" && !tokenRE.MatchString(u.Service.Subset) {
			v.at(p+".service.subset", "upstream %q: service.subset %q must be a name of letters, digits and -._~", u.Name, u.Service.Subset)
		}
	case len(u.Endpoints) == 0:
		v.at(p, "upstream %q: at least one endpoint (or a service) is required", u.Name)
	}
	for j, e := range u.Endpoints {
		ep := fmt.Sprintf("%s.endpoints[%d]", p, j)
		v.hostPort(ep+".address", e.Address)
		if e.Weight < 0 || e.Weight > 10000 {
			v.at(ep+".weight", "endpoint weight %d must be 1..10000", e.Weight)
		}
	}
	switch u.Protocol {
	case "http1", "h2c", "auto":
	default:
		v.at(p+".protocol", "upstream %q: protocol %q must be http1, h2c or auto", u.Name, u.Protocol)
	}
	switch u.Balancer.Policy {
	case "round_robin", "least_request":
		if u.Balancer.HashOn != nil {
			v.at(p+".balancer.hash_on", "upstream %q: hash_on applies only to policy consistent_hash", u.Name)
		}
	case "consistent_hash":
		h := u.Balancer.HashOn
		n := 0
		if h != nil {
			for _, set := range []bool{h.Header != "", h.Cookie != "", h.ClientIP} {
				if set {
					n++
				}
			}
		}
		if n != 1 {
			v.at(p+".balancer", "upstream %q: consistent_hash needs hash_on with exactly one of header, cookie, client_ip", u.Name)
		}
	default:
		v.at(p+".balancer.policy", "upstream %q: balancer policy %q must be round_robin, least_request or consistent_hash", u.Name, u.Balancer.Policy)
	}
	if b := u.Breaker; b != nil {
		switch {
		case b.ConsecutiveFailures < 0 || b.MinRequests < 0 || b.MaxProbes < 0 || b.Quorum < 0:
			v.at(p+".breaker", "upstream %q: breaker counts must not be negative", u.Name)
		case b.FailureRatio < 0 || b.FailureRatio > 1:
			v.at(p+".breaker.failure_ratio", "upstream %q: breaker.failure_ratio %g must be within 0..1", u.Name, b.FailureRatio)
		case b.OpenTimeout.D() > 24*time.Hour:
			v.at(p+".breaker.open_timeout", "upstream %q: breaker.open_timeout must be at most 24h", u.Name)
		}
	}
	if u.MaxConnections < 0 || u.MaxPending < 0 || u.MaxIdlePerEndpoint < 0 {
		v.at(p, "upstream %q: connection limits must not be negative", u.Name)
	}
	if h := u.HealthCheck; h != nil {
		if !strings.HasPrefix(h.Path, "/") {
			v.at(p+".health_check.path", "health_check.path %q must start with /", h.Path)
		}
		if h.Timeout > h.Interval {
			v.at(p+".health_check.timeout", "health_check.timeout exceeds interval")
		}
		if h.HealthyThreshold < 1 || h.UnhealthyThreshold < 1 {
			v.at(p+".health_check", "health_check thresholds must be at least 1")
		}
		if _, _, err := ParseStatusRange(h.ExpectedStatus); err != nil {
			v.at(p+".health_check.expected_status", "%v", err)
		}
	}
	if o := u.Outlier; o != nil {
		if o.MaxEjectedPercent < 0 || o.MaxEjectedPercent > 100 {
			v.at(p+".outlier.max_ejected_percent", "max_ejected_percent %d must be 0..100", o.MaxEjectedPercent)
		}
		if o.MaxEjection < o.BaseEjection {
			v.at(p+".outlier.max_ejection", "outlier.max_ejection is less than base_ejection")
		}
	}
	if b := u.RetryBudget; b.Percent < 0 || b.Percent > 100 || b.MinPerSecond < 0 {
		v.at(p+".retry_budget", "retry_budget.percent must be 0..100 and min_per_second not negative")
	}
}

// ParseStatusRange parses "200-399" or "200".
func ParseStatusRange(s string) (lo, hi int, err error) {
	a, b, found := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi = lo
	var err2 error
	if found {
		hi, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		return 0, 0, fmt.Errorf("invalid status range %q (e.g. \"200-399\")", s)
	}
	return lo, hi, nil
}

// match validates a route's match and returns the template's parameter names.
func (v *validator) match(p string, r *Route) map[string]bool {
	m := &r.Match
	v.hosts(p+".hosts", m.Hosts)
	for j, meth := range m.Methods {
		if !tokenRE.MatchString(meth) || strings.ToUpper(meth) != meth {
			v.at(fmt.Sprintf("%s.methods[%d]", p, j), "method %q must be an upper-case token such as GET", meth)
		}
	}
	v.matchers(p+".headers", m.Headers)
	v.matchers(p+".query", m.Query)
	var params map[string]bool
	if m.Path != nil {
		pp := p + ".path"
		set := 0
		for _, s := range []string{m.Path.Exact, m.Path.Prefix, m.Path.Template, m.Path.Regex} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			v.at(pp, "path needs exactly one of exact, prefix, template, regex")
		}
		for field, s := range map[string]string{"exact": m.Path.Exact, "prefix": m.Path.Prefix, "template": m.Path.Template} {
			if s != "" && !strings.HasPrefix(s, "/") {
				v.at(pp+"."+field, "path %q must start with /", s)
			}
		}
		if m.Path.Regex != "" {
			if _, err := regexp.Compile(m.Path.Regex); err != nil {
				v.at(pp+".regex", "invalid regex: %v", err)
			}
		}
		if t := m.Path.Template; t != "" {
			params = map[string]bool{}
			if err := checkTemplate(t, params); err != nil {
				v.at(pp+".template", "template %q: %v", t, err)
			}
		}
	}
	return params
}

// hosts validates the host names of a match or a BFF group: exact, or
// *.domain.
func (v *validator) hosts(p string, hosts []string) {
	for j, h := range hosts {
		rest := strings.TrimPrefix(h, "*.")
		if h == "" || strings.ContainsAny(rest, "*/: ") {
			v.at(fmt.Sprintf("%s[%d]", p, j), "host %q must be a name or *.domain", h)
		}
	}
}

// checkTemplate checks that every segment is literal, {name} or, last,
// {name...}, and collects the names.
func checkTemplate(t string, params map[string]bool) error {
	segs := strings.Split(strings.TrimPrefix(t, "/"), "/")
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		m := paramRE.FindStringSubmatch(seg)
		if m == nil || m[0] != seg {
			return fmt.Errorf("segment %q: a parameter must be a whole segment, {name} or {name...}", seg)
		}
		if m[2] != "" && i != len(segs)-1 {
			return fmt.Errorf("{%s...} must be the last segment", m[1])
		}
		if params[m[1]] {
			return fmt.Errorf("parameter %q appears twice", m[1])
		}
		params[m[1]] = true
	}
	return nil
}

func (v *validator) matchers(p string, ms []ValueMatcher) {
	for j, m := range ms {
		mp := fmt.Sprintf("%s[%d]", p, j)
		if m.Name == "" {
			v.at(mp, "name is required")
		}
		set := 0
		if m.Exact != "" {
			set++
		}
		if m.Regex != "" {
			set++
			if _, err := regexp.Compile(m.Regex); err != nil {
				v.at(mp+".regex", "invalid regex: %v", err)
			}
		}
		if m.Present {
			set++
		}
		if set != 1 {
			v.at(mp, "%q needs exactly one of exact, regex, present", m.Name)
		}
	}
}

func (v *validator) rewrite(p string, r *Route, params map[string]bool) {
	rw := r.Rewrite
	if rw == nil {
		return
	}
	set := 0
	if rw.StripPrefix != "" {
		set++
		if !strings.HasPrefix(rw.StripPrefix, "/") {
			v.at(p+".strip_prefix", "strip_prefix %q must start with /", rw.StripPrefix)
		}
	}
	if rw.Path != "" {
		set++
		if !strings.HasPrefix(rw.Path, "/") {
			v.at(p+".path", "rewrite path %q must start with /", rw.Path)
		}
		for _, m := range paramRE.FindAllStringSubmatch(rw.Path, -1) {
			if !params[m[1]] {
				v.at(p+".path", "rewrite uses {%s}, which the route's path template does not define", m[1])
			}
		}
	}
	if rw.Regex != nil {
		set++
		if _, err := regexp.Compile(rw.Regex.Pattern); err != nil {
			v.at(p+".regex.pattern", "invalid regex: %v", err)
		}
	}
	if set != 1 {
		v.at(p, "rewrite needs exactly one of strip_prefix, path, regex")
	}
}

func (v *validator) headerOps(p string, ops HeaderOps) {
	check := func(field, name string) {
		if !tokenRE.MatchString(name) {
			v.at(p+"."+field, "invalid header name %q", name)
		}
	}
	for k := range ops.Add {
		check("add", k)
	}
	for k := range ops.Set {
		check("set", k)
	}
	for _, k := range ops.Remove {
		check("remove", k)
	}
}

// matchKey is a canonical form of a route's match, to find two routes that
// match exactly the same requests on the same listeners.
func matchKey(r *Route) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q|%q|%q|", r.Listeners, r.Match.Hosts, r.Match.Methods)
	if p := r.Match.Path; p != nil {
		fmt.Fprintf(&b, "%q%q%q%q", p.Exact, p.Prefix, p.Template, p.Regex)
	}
	fmt.Fprintf(&b, "|%v|%v", r.Match.Headers, r.Match.Query)
	return b.String()
}

func (v *validator) cluster(c *Config) {
	cl := c.Cluster
	if c.Identity == nil {
		v.at("cluster", "cluster needs the node's identity (set identity): gossip is mTLS")
	}
	if cl.Bind == "" {
		v.at("cluster.bind", "cluster.bind (the gossip listener's host:port) is required")
	} else {
		v.hostPort("cluster.bind", cl.Bind)
	}
	adv := cl.Advertise
	if adv == "" {
		adv = cl.Bind
	} else {
		v.hostPort("cluster.advertise", adv)
	}
	if host, _, err := net.SplitHostPort(adv); err == nil {
		if ip, err := netip.ParseAddr(host); err != nil || ip.IsUnspecified() {
			v.at("cluster", "cluster: %s is not an address peers can reach: set cluster.advertise to this host's IP and port", adv)
		}
	}
	if cl.SuspicionMult < 0 || cl.SuspicionMult > 20 {
		v.at("cluster.suspicion_mult", "cluster.suspicion_mult %d: want 1 to 20 probe intervals", cl.SuspicionMult)
	}
	if cl.Name != "" && !tokenRE.MatchString(cl.Name) {
		v.at("cluster.name", "cluster.name %q must be a name of letters, digits and -._~", cl.Name)
	}
	for i, j := range cl.Join {
		v.hostPort(fmt.Sprintf("cluster.join[%d]", i), j)
	}
	for i, a := range cl.Allow {
		if _, err := pki.ParsePattern(a); err != nil {
			v.at(fmt.Sprintf("cluster.allow[%d]", i), "%v", err)
		}
	}
	for i, a := range cl.Writers {
		if _, err := pki.ParsePattern(a); err != nil {
			v.at(fmt.Sprintf("cluster.writers[%d]", i), "%v", err)
		}
	}
	writable := append(slices.Clone(Kinds), KindCachePurge)
	for kind, ps := range cl.KindWriters {
		p := "cluster.kind_writers." + kind
		if !slices.Contains(writable, kind) {
			v.at(p, "cluster.kind_writers: unknown kind %q (kinds: %s)", kind, strings.Join(writable, ", "))
			continue
		}
		if len(ps) == 0 {
			v.at(p, "cluster.kind_writers.%s is empty: nobody could write %s (list its writers, or leave the kind out to use cluster.writers)", kind, kind)
		}
		for i, a := range ps {
			if _, err := pki.ParsePattern(a); err != nil {
				v.at(fmt.Sprintf("%s[%d]", p, i), "%v", err)
			}
		}
	}
}

func (v *validator) rateLimit(p, route string, rl *RateLimit) {
	if rl.Requests < 1 {
		v.at(p+".requests", "route %q: rate_limit.requests must be at least 1", route)
	}
	if w := rl.Window.D(); w < time.Second || w > 24*time.Hour {
		v.at(p+".window", "route %q: rate_limit.window %s must be within 1s..24h", route, w)
	}
	switch {
	case rl.Key == "route", rl.Key == "client_ip":
	case strings.HasPrefix(rl.Key, "header:") && tokenRE.MatchString(strings.TrimPrefix(rl.Key, "header:")):
	default:
		v.at(p+".key", "route %q: rate_limit.key %q must be route, client_ip or header:NAME", route, rl.Key)
	}
	if rl.OnIsolation != "open" && rl.OnIsolation != "closed" {
		v.at(p+".on_isolation", "route %q: rate_limit.on_isolation %q must be open or closed", route, rl.OnIsolation)
	}
}

// MaxTracingQueue bounds tracing.queue_size (each queued span holds about a
// kilobyte).
const MaxTracingQueue = 1 << 20

// tracing validates a tracing section, before or after defaults (the
// sidecar's file is checked before): an empty value is its default.
func (v *validator) tracing(t *Tracing) {
	for _, p := range t.envProblems {
		v.at("tracing", "from the environment: %s", p)
	}
	if t.Endpoint == "" {
		v.at("tracing", "tracing.endpoint (the OTLP receiver's host:port) is required; remove the section to turn tracing off")
	} else if host, port, err := net.SplitHostPort(t.Endpoint); err != nil || host == "" {
		v.at("tracing.endpoint", "tracing.endpoint %q must be host:port (no scheme or path), such as 127.0.0.1:4317", t.Endpoint)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.at("tracing.endpoint", "tracing.endpoint %q: invalid port %q", t.Endpoint, port)
	} else if _, err := netip.ParseAddr(host); err != nil && !dnsNameRE.MatchString(host) {
		v.at("tracing.endpoint", "tracing.endpoint %q: %q is neither an IP address nor a host name", t.Endpoint, host)
	}
	switch t.Protocol {
	case "", "grpc", "http":
	default:
		v.at("tracing.protocol", "tracing.protocol %q must be grpc or http", t.Protocol)
	}
	for k, val := range t.Headers {
		switch lk := strings.ToLower(k); {
		case !exportHeaderRE.MatchString(k):
			v.at("tracing.headers."+k, "invalid header name %q: letters, digits, '-', '_' and '.' only (the names gRPC metadata allows)", k)
		case reservedExportHeaders[lk] || strings.HasPrefix(lk, "grpc-"):
			v.at("tracing.headers."+k, "header %q is set by the exporter itself", k)
		}
		if !printableASCII(val) {
			v.at("tracing.headers."+k, "header %q: the value must be printable ASCII (no control characters or line breaks)", k)
		}
	}
	switch {
	case t.Insecure && t.CAFile != "":
		v.at("tracing.ca_file", "tracing: set insecure (plaintext) or ca_file (TLS), not both")
	case t.CAFile != "":
		if _, err := LoadCAFile(t.CAFile); err != nil {
			v.at("tracing.ca_file", "%v", err)
		}
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "":
	case t.Insecure:
		v.at("tracing.cert_file", "tracing: a client certificate needs TLS; remove insecure")
	case t.CertFile == "" || t.KeyFile == "":
		v.at("tracing.cert_file", "tracing: cert_file and key_file go together (the client certificate and its key)")
	default:
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			v.at("tracing.cert_file", "tracing client certificate: %v", err)
		}
	}
	if t.ServerName != "" && t.Insecure {
		v.at("tracing.server_name", "tracing: server_name is verified over TLS; remove insecure")
	}
	if r := t.Sampling.Ratio; r != nil && !(*r >= 0 && *r <= 1) {
		v.at("tracing.sampling.ratio", "tracing.sampling.ratio %g must be within 0..1", *r)
	}
	for k := range t.Resource {
		if k == "" || strings.TrimSpace(k) != k {
			v.at("tracing.resource", "tracing.resource: attribute name %q must be non-empty, without surrounding spaces", k)
		}
	}
	if t.QueueSize < 0 || t.QueueSize > MaxTracingQueue {
		v.at("tracing.queue_size", "tracing.queue_size %d must be 1..%d", t.QueueSize, MaxTracingQueue)
	}
	switch t.Compression {
	case "", "gzip", "none":
	default:
		v.at("tracing.compression", "tracing.compression %q must be gzip or none", t.Compression)
	}
	if d := t.ExportTimeout.D(); d > 5*time.Minute {
		v.at("tracing.export_timeout", "tracing.export_timeout %s must be at most 5m", d)
	}
}

// Export header names are what both OTLP transports accept: gRPC metadata
// keys are [0-9a-z_.-] (sent lower-cased), a subset of HTTP tokens.
var exportHeaderRE = regexp.MustCompile(`^[0-9A-Za-z_.-]+$`)

// dnsNameRE is a host name: dot-separated labels of letters, digits and
// inner hyphens.
var dnsNameRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// reservedExportHeaders are set by the exporters; a configured value would
// break the export (grpc-* too).
var reservedExportHeaders = map[string]bool{
	"content-type": true, "content-length": true, "content-encoding": true, "te": true, "host": true,
	"connection": true, "transfer-encoding": true, "user-agent": true, "upgrade": true, "keep-alive": true,
}

// printableASCII reports whether s is visible ASCII and spaces, what gRPC
// allows in a metadata value and HTTP in a header without obs-text.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// LoadCAFile reads PEM certificates to trust, refusing a file without any.
func LoadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
