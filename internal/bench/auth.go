package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meshgate/meshgate/internal/auth/apikey"
)

// The auth suite: what authenticating a consumer and limiting its tier
// cost the edge. Five edges with the same route to the same 1 KiB
// keep-alive backend: one without auth (plain), and four whose route
// takes a credential and applies the consumer's tier limit: a JWT signed
// RS256, a JWT signed ES256, an API key, and an opaque token checked by
// introspection. The tier allows 100,000,000 requests a minute, far above
// the offered load, so nothing is refused but the limiter runs on every
// request. This process is the IdP: it generates the keys, signs the
// tokens with go-jose, serves the JWKS and an RFC 7662 introspection
// endpoint (whose calls it counts: the edge caches the answer, so it is
// called rarely). Edges and backend on core 0 (GOMAXPROCS=1), wrk and
// this process on core 1. Before measuring, each edge must answer 200 to
// its credential and 401 to none and to a wrong one, so a misconfiguration
// cannot pass fast 401s off as throughput; a measured run with any
// non-2xx response fails the suite. req/s from wrk -t1 -c50 with the
// credential in a header. Each round measures every auth edge in a pair
// with the plain edge, the two alternating in slices (runPairs; plain
// first in one pair, last in the next; the auth edges in a rotating
// order), and each ratio is the median over rounds (at least five, see
// pairedRounds) of the pair's auth/plain req/s: as in the tracing suite,
// pairing cancels the machine's drift, and interleaved slices cancel more
// of it than adjacent runs or rounds would.
//
// The same client sends the same credential on every request, as real
// clients do for a token's lifetime: the JWT edges verify the signature
// once and then find the token in their verified-token cache, the
// introspection edge asks the endpoint once per cache_max. A signature
// check per request costs what `go test -bench Verify ./internal/auth/jwtauth`
// reports.
//
// BENCH_AUTH_PROFILE=dir: after the rounds, a CPU profile of each edge
// under the same load (BENCH_DURATION long, from its admin listener's
// pprof) is written to dir/<edge>.pprof, for
// `go tool pprof -peek 'auth.*stage.*ServeHTTP$' bin/edge dir/auth-apikey.pprof`.

// authRatioTarget is the lowest acceptable auth/plain req/s.
const authRatioTarget = 0.85

// Identities of the suite's IdP.
const (
	authConsumer     = "bench-client"
	authAudience     = "meshgate-bench"
	authClientID     = "meshgate-edge"
	authClientSecret = "bench-secret"
	authTierLimit    = 100_000_000 // per minute
)

// authTarget is one edge and the credential its route takes.
type authTarget struct {
	loadEdge
	key  string // JSON suffix: rps_<key>, ratio_<key>
	what string // printed description
	// header is the credential, "Name: value" as wrk -H takes it ("" for
	// plain); bad is a wrong credential, which must get 401.
	header, bad string
}

type authRun struct {
	targets         []*authTarget // plain first
	introspectCalls int64
	jwksFetches     int64
	problemLog
}

func runAuth(ctx context.Context, env *Env) (json.RawMessage, error) {
	o := env.Opts
	if err := ensureApt(ctx, map[string]string{"wrk": "wrk"}); err != nil {
		return nil, err
	}
	bin := filepath.Join(env.Bin, "edge")
	if o.Edge != "" {
		bin = o.Edge
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s not built (make build): %v", bin, err)
	}
	// The IdP runs in this process: keep it off the servers' core.
	if env.Pinned {
		if err := pinSelf(loadCore); err != nil {
			fmt.Fprintf(os.Stderr, "bench: warning: auth: could not pin the IdP to core %d: %v\n", loadCore, err)
		} else {
			defer unpinSelf()
		}
	}
	idp, err := startAuthIdP()
	if err != nil {
		return nil, fmt.Errorf("IdP: %v", err)
	}
	defer idp.Close()
	creds, err := idp.credentials()
	if err != nil {
		return nil, err
	}

	ports, err := freePorts(11)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	backendAddr := addr(0)
	var started []*Proc
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Stop()
		}
	}()
	backend, err := env.startBackend(ctx, "auth-backend", backendAddr)
	if err != nil {
		return nil, err
	}
	started = append(started, backend)

	specs := authSpecs(idp.url, creds)
	r := &authRun{problemLog: problemLog{scope: "auth"}}
	for i, s := range specs {
		t := s.target
		listen, admin := addr(1+2*i), addr(2+2*i)
		t.url, t.adm = "http://"+listen+"/", "http://"+admin
		if t.header != "" {
			t.headers = []string{t.header}
		}
		r.targets = append(r.targets, t)
		// Ready: the admin listener's readyz (the route itself answers
		// 401 without a credential).
		p, err := env.startEdge(ctx, t.name, bin, authEdgeConfig(listen, admin, backendAddr, s.defs, s.routeAuth), t.adm+"/readyz")
		if err != nil {
			return nil, err
		}
		started = append(started, p)
		t.proc = p
	}
	for _, t := range r.targets {
		if err := checkCredential(ctx, t); err != nil {
			t.failed = fmt.Errorf("credential check: %v", err)
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n%s\n", t.name, t.failed, indent(t.proc.LogTail(10)))
		}
	}

	rounds := pairedRounds(o.Rounds)
	pin := "unpinned"
	if env.Pinned {
		pin = fmt.Sprintf("edges and backend on core %d, wrk and the IdP on core %d", serverCore, loadCore)
	}
	logf("auth: %d rounds of %d pairs (plain, auth edge); wrk -t1 -c50 -d%s per run; warm-up %s; %s",
		rounds, len(r.targets)-1, durArg(o.Duration), o.Warmup, pin)
	edges := make([]*loadEdge, len(r.targets))
	for i, t := range r.targets {
		edges[i] = &t.loadEdge
	}
	env.runPairs(ctx, rounds, edges[0], edges[1:], &r.problemLog)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dir := os.Getenv("BENCH_AUTH_PROFILE"); dir != "" {
		env.profileEdges(ctx, edges, dir)
	}
	for _, t := range r.targets {
		if t.failed != nil {
			r.problem("%s: %v", t.name, firstLines(t.failed.Error()))
		}
	}
	r.introspectCalls, r.jwksFetches = idp.introspections.Load(), idp.jwksFetches.Load()
	if idp.badIntrospectAuth.Load() > 0 {
		r.problem("the introspection endpoint got %d calls without the edge's client credentials", idp.badIntrospectAuth.Load())
	}

	return r.report("auth", func(w io.Writer) { printAuth(w, env, r) }, authJSON(r))
}

// checkCredential makes sure the edge's route does what the measurement
// assumes: the credential gets the backend's 200 and 1 KiB; without it,
// or with a wrong one, the edge answers 401.
func checkCredential(ctx context.Context, t *authTarget) error {
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(header string) (int, int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
		if err != nil {
			return 0, 0, err
		}
		if header != "" {
			name, value, _ := strings.Cut(header, ":")
			req.Header.Set(name, strings.TrimSpace(value))
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, int(n), err
	}
	code, n, err := get(t.header)
	switch {
	case err != nil:
		return err
	case code != http.StatusOK || n != 1024:
		return fmt.Errorf("with the credential: status %d, %d bytes; want 200 and the backend's 1024", code, n)
	}
	if t.header == "" {
		return nil
	}
	for _, c := range []struct{ what, header string }{{"without a credential", ""}, {"with a wrong credential", t.bad}} {
		code, _, err := get(c.header)
		if err != nil {
			return err
		}
		if code != http.StatusUnauthorized {
			return fmt.Errorf("%s: status %d, want 401", c.what, code)
		}
	}
	return nil
}

// authSpec is one edge to start: its target and its config.
type authSpec struct {
	target    *authTarget
	defs      string // auth, consumers and tiers sections
	routeAuth string // the route's auth: line(s), indented
}

// authCreds are the credentials the IdP made.
type authCreds struct {
	rs256, rs256Bad   string // JWTs
	es256, es256Bad   string
	apiKey, apiKeyBad string
	apiKeyHash        string
	opaque, opaqueBad string // introspection tokens
}

// authSpecs are the five edges, plain first.
func authSpecs(idpURL string, c authCreds) []authSpec {
	tier := fmt.Sprintf("tiers:\n  - {name: default, limits: [{requests: %d, window: 1m}]}\n", authTierLimit)
	jwtDefs := func(alg, jwks string) string {
		return fmt.Sprintf(`auth:
  jwt:
    - name: idp
      issuer: %q
      jwks_uri: %q
      audiences: [%s]
      algorithms: [%s]
consumers:
  - {name: %s}
%s`, idpURL, idpURL+jwks, authAudience, alg, authConsumer, tier)
	}
	const routeAuth = "    auth: {methods: [idp]}\n"
	return []authSpec{
		{target: &authTarget{loadEdge: loadEdge{name: "auth-plain"}, key: "plain", what: "no auth"}},
		{
			target: &authTarget{loadEdge: loadEdge{name: "auth-jwt-rs256"}, key: "jwt", what: "JWT RS256 + tier limit",
				header: "Authorization: Bearer " + c.rs256, bad: "Authorization: Bearer " + c.rs256Bad},
			defs: jwtDefs("RS256", "/jwks/rs256"), routeAuth: routeAuth,
		},
		{
			target: &authTarget{loadEdge: loadEdge{name: "auth-jwt-es256"}, key: "jwt_es256", what: "JWT ES256 + tier limit",
				header: "Authorization: Bearer " + c.es256, bad: "Authorization: Bearer " + c.es256Bad},
			defs: jwtDefs("ES256", "/jwks/es256"), routeAuth: routeAuth,
		},
		{
			target: &authTarget{loadEdge: loadEdge{name: "auth-apikey"}, key: "apikey", what: "API key + tier limit",
				header: "X-Api-Key: " + c.apiKey, bad: "X-Api-Key: " + c.apiKeyBad},
			defs: fmt.Sprintf(`auth:
  api_keys:
    - {name: idp, header: X-Api-Key}
consumers:
  - {name: %s, api_keys: [%q]}
%s`, authConsumer, c.apiKeyHash, tier),
			routeAuth: routeAuth,
		},
		{
			target: &authTarget{loadEdge: loadEdge{name: "auth-introspect"}, key: "introspect", what: "introspection (cached) + tier limit",
				header: "Authorization: Bearer " + c.opaque, bad: "Authorization: Bearer " + c.opaqueBad},
			defs: fmt.Sprintf(`auth:
  introspection:
    - name: idp
      endpoint: %q
      client_id: %s
      client_secret: %s
      audiences: [%s]
consumers:
  - {name: %s}
%s`, idpURL+"/introspect", authClientID, authClientSecret, authAudience, authConsumer, tier),
			routeAuth: routeAuth,
		},
	}
}

func authEdgeConfig(listen, admin, backend, defs, routeAuth string) string {
	return fmt.Sprintf(`# meshgate edge config of the auth benchmark (written by internal/bench).
log:
  access: "off"
  level: warn
admin:
  address: %s
  pprof: true
listeners:
  - name: http
    address: %s
%sroutes:
  - name: all
    match:
      path: {prefix: /}
    upstream: backend
%supstreams:
  - name: backend
    protocol: http1
    endpoints:
      - address: %s
`, admin, listen, defs, routeAuth, backend)
}

// authIdP is the suite's identity provider, in this process: key sets at
// /jwks/rs256 and /jwks/es256, RFC 7662 introspection at /introspect.
type authIdP struct {
	url      string
	srv      *http.Server
	rsa      *rsa.PrivateKey
	ec       *ecdsa.PrivateKey
	jwks     map[string][]byte // path → key set
	opaque   string            // the one active introspection token
	tokenExp time.Time

	introspections    atomic.Int64
	badIntrospectAuth atomic.Int64
	jwksFetches       atomic.Int64
}

func startAuthIdP() (*authIdP, error) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	opaque := make([]byte, 32)
	if _, err := rand.Read(opaque); err != nil {
		return nil, err
	}
	p := &authIdP{rsa: rk, ec: ek, opaque: fmt.Sprintf("opaque-%x", opaque),
		tokenExp: time.Now().Add(2 * time.Hour), jwks: map[string][]byte{}}
	for path, k := range map[string]jose.JSONWebKey{
		"/jwks/rs256": {Key: rk.Public(), KeyID: "bench-rs256", Algorithm: string(jose.RS256), Use: "sig"},
		"/jwks/es256": {Key: ek.Public(), KeyID: "bench-es256", Algorithm: string(jose.ES256), Use: "sig"},
	} {
		data, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
		if err != nil {
			return nil, err
		}
		p.jwks[path] = data
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.url = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	for path, data := range p.jwks {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
			p.jwksFetches.Add(1)
			w.Header().Set("Content-Type", "application/jwk-set+json")
			w.Header().Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(data)
		})
	}
	mux.HandleFunc("POST /introspect", p.introspect)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *authIdP) Close() { _ = p.srv.Close() }

// introspect answers RFC 7662 requests: active for p.opaque, inactive for
// anything else; callers must authenticate as the edge's client.
func (p *authIdP) introspect(w http.ResponseWriter, req *http.Request) {
	p.introspections.Add(1)
	id, secret, ok := req.BasicAuth()
	if !ok || id != authClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(authClientSecret)) != 1 {
		p.badIntrospectAuth.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	ans := map[string]any{"active": false}
	if req.PostFormValue("token") == p.opaque {
		ans = map[string]any{
			"active": true, "sub": authConsumer, "client_id": authConsumer, "aud": authAudience,
			"token_type": "Bearer", "exp": p.tokenExp.Unix(), "iat": time.Now().Unix(), "iss": p.url,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(ans)
}

// credentials signs the JWTs and makes the API keys. Each wrong credential
// is the right kind of thing, refused: a JWT whose signature is another
// token's, a key no consumer has, a token the IdP does not know.
func (p *authIdP) credentials() (authCreds, error) {
	var c authCreds
	var err error
	claims := jwt.Claims{Issuer: p.url, Subject: authConsumer, Audience: jwt.Audience{authAudience},
		IssuedAt: jwt.NewNumericDate(time.Now()), Expiry: jwt.NewNumericDate(p.tokenExp)}
	if c.rs256, c.rs256Bad, err = signPair(jose.RS256, "bench-rs256", p.rsa, claims); err != nil {
		return c, err
	}
	if c.es256, c.es256Bad, err = signPair(jose.ES256, "bench-es256", p.ec, claims); err != nil {
		return c, err
	}
	if c.apiKey, c.apiKeyHash, err = apikey.Generate(); err != nil {
		return c, err
	}
	if c.apiKeyBad, _, err = apikey.Generate(); err != nil {
		return c, err
	}
	c.opaque, c.opaqueBad = p.opaque, "opaque-unknown-to-the-idp"
	return c, nil
}

// signPair signs claims, and a token whose header and payload are those of
// the first but whose signature is that of another token (other subject):
// a bad signature.
func signPair(alg jose.SignatureAlgorithm, kid string, key crypto.Signer, claims jwt.Claims) (good, bad string, err error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", "", err
	}
	if good, err = jwt.Signed(signer).Claims(claims).Serialize(); err != nil {
		return "", "", err
	}
	other := claims
	other.Subject = "someone-else"
	otherTok, err := jwt.Signed(signer).Claims(other).Serialize()
	if err != nil {
		return "", "", err
	}
	i, j := strings.LastIndexByte(good, '.'), strings.LastIndexByte(otherTok, '.')
	if i < 0 || j < 0 {
		return "", "", errors.New("signed JWT without signature part")
	}
	return good, good[:i] + otherTok[j:], nil
}

// authJSON is the suite's fragment: rps_<key> and cpu_us_per_req_<key>
// for every edge, ratio_<key> for every one but plain, the target, the
// IdP's counts and the problems.
func authJSON(r *authRun) map[string]any {
	out := map[string]any{
		"target":           authRatioTarget,
		"introspect_calls": r.introspectCalls,
		"jwks_fetches":     r.jwksFetches,
	}
	if r.failed() {
		out["error"] = r.summary()
	}
	rounds := 0
	for i, t := range r.targets {
		if len(t.rps) > 0 {
			out["rps_"+t.key] = round(median(t.rps), 1)
		}
		if len(t.cpuUS) > 0 {
			out["cpu_us_per_req_"+t.key] = round(median(t.cpuUS), 2)
		}
		if x, ok := t.ratio(); ok && i > 0 {
			out["ratio_"+t.key] = round(x, 3)
			rounds = max(rounds, len(t.ratios))
		}
	}
	out["rounds"] = rounds
	return out
}

func printAuth(w io.Writer, env *Env, r *authRun) {
	fmt.Fprintf(w, "auth: medians of %d round(s); req/s from wrk -t1 -c50 -d%s, the credential in a header; ratio = median over rounds of edge/plain req/s in pairs of alternating slices\n",
		pairedRounds(env.Opts.Rounds), durArg(env.Opts.Duration))
	const row = "%-16s %-36s %9s %10s %7s %s\n"
	fmt.Fprintf(w, row, "edge", "route", "req/s", "CPU µs/req", "ratio", "")
	num := func(xs []float64, format string) string {
		if len(xs) == 0 {
			return "-"
		}
		return fmt.Sprintf(format, median(xs))
	}
	plain := r.targets[0]
	for _, t := range r.targets {
		ratio, verdict := "-", ""
		if t != plain {
			if x, ok := t.ratio(); ok {
				ratio, verdict = fmt.Sprintf("%.3f", x), "PASS"
				if x < authRatioTarget {
					verdict = "MISS"
				}
			}
		}
		fmt.Fprintf(w, row, t.name, t.what, num(t.rps, "%.0f"), num(t.cpuUS, "%.1f"), ratio, verdict)
	}
	fmt.Fprintf(w, "target: every ratio ≥ %g; introspection endpoint called %d times; key sets fetched %d times\n",
		authRatioTarget, r.introspectCalls, r.jwksFetches)
}
