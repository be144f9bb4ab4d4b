package dataplane

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// consumersFixture is an mTLS entry with a consumers section, in front of
// no route (an admitted request gets 404 from the entry), with its access
// log and process log in memory, and SVIDs of the trust domain.
type consumersFixture struct {
	e      *Entry
	access *telemetry.AccessLog
	accBuf *syncBuffer
	logBuf *syncBuffer
	ca     *pkitest.CA
	closed sync.Once
}

func newConsumersFixture(t *testing.T, lc *config.ListenerConsumers) *consumersFixture {
	t.Helper()
	c, err := NewConsumers(lc)
	if err != nil {
		t.Fatal(err)
	}
	f := &consumersFixture{accBuf: &syncBuffer{}, logBuf: &syncBuffer{},
		ca: pkitest.NewCA(t, spiffeid.RequireTrustDomainFromString("example.org"))}
	f.access = telemetry.NewAccessLog(f.accBuf, nil)
	t.Cleanup(func() { f.closed.Do(func() { _ = f.access.Close() }) })
	f.e = entry(t, EntryOptions{Caller: &Caller{Consumers: c}, Log: f.access,
		Logger: slog.New(slog.NewJSONHandler(f.logBuf, nil))})
	return f
}

// svid is an SVID of the trust domain's ID path.
func (f *consumersFixture) svid(t *testing.T, path string) *x509svid.SVID {
	t.Helper()
	return f.ca.SVID(t, f.ca.ID(t, path))
}

// do sends a request from the caller path with the headers given and
// returns the status and the request as the entry left it (its headers are
// what a route would forward).
func (f *consumersFixture) do(t *testing.T, caller string, hdr map[string]string) (int, *http.Request) {
	t.Helper()
	r := httptest.NewRequest("GET", "/x", nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	if caller != "" {
		r.TLS = &tls.ConnectionState{PeerCertificates: f.svid(t, caller).Certificates}
	} else {
		r.TLS = &tls.ConnectionState{}
	}
	return serve(f.e, r), r
}

// lines closes the access log and returns its lines.
func (f *consumersFixture) lines(t *testing.T) []map[string]any {
	t.Helper()
	f.closed.Do(func() { _ = f.access.Close() })
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(f.accBuf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (f *consumersFixture) denied(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	f.e.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, `meshgate_authz_denied_total{listener="public"}`) {
			return strings.TrimSpace(strings.TrimPrefix(l, `meshgate_authz_denied_total{listener="public"}`))
		}
	}
	return "0"
}

var edgeConsumer = map[string]string{config.HeaderConsumer: "acme", config.HeaderTier: "gold"}

// A trusted caller's consumer and tier are kept for the upstream and
// recorded on the exchange (the access log shows them).
func TestConsumersTrustedKept(t *testing.T) {
	f := newConsumersFixture(t, &config.ListenerConsumers{Trusted: []string{"spiffe://example.org/edge"}})
	code, r := f.do(t, "/edge", edgeConsumer)
	if code != http.StatusNotFound { // admitted: no route
		t.Fatalf("status %d", code)
	}
	if got := r.Header.Get(config.HeaderConsumer); got != "acme" {
		t.Errorf("consumer header %q, want acme", got)
	}
	if got := r.Header.Get(config.HeaderTier); got != "gold" {
		t.Errorf("tier header %q, want gold", got)
	}
	if got := r.Header.Get(CallerHeader); got != "spiffe://example.org/edge" {
		t.Errorf("caller header %q", got)
	}
	l := f.lines(t)
	if len(l) != 1 || l[0]["consumer"] != "acme" || l[0]["tier"] != "gold" || l[0]["caller"] != "spiffe://example.org/edge" {
		t.Errorf("access log %v, want consumer acme, tier gold, the edge as caller", l)
	}
}

// A trusted pattern (a final /*) admits every ID under it.
func TestConsumersTrustedPattern(t *testing.T) {
	f := newConsumersFixture(t, &config.ListenerConsumers{Trusted: []string{"spiffe://example.org/edge/*"}})
	if _, r := f.do(t, "/edge/eu-1", edgeConsumer); r.Header.Get(config.HeaderConsumer) != "acme" {
		t.Errorf("consumer of /edge/eu-1 not kept: %v", r.Header)
	}
	if _, r := f.do(t, "/edgy", edgeConsumer); r.Header.Get(config.HeaderConsumer) != "" {
		t.Errorf("consumer of /edgy kept: %v", r.Header)
	}
}

// An untrusted caller's consumer headers are removed and not recorded;
// so are a trusted caller's that are not one non-empty value.
func TestConsumersUntrustedRemoved(t *testing.T) {
	f := newConsumersFixture(t, &config.ListenerConsumers{Trusted: []string{"spiffe://example.org/edge"}})
	code, r := f.do(t, "/orders", edgeConsumer)
	if code != http.StatusNotFound {
		t.Fatalf("status %d", code)
	}
	for _, h := range []string{config.HeaderConsumer, config.HeaderTier} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("untrusted caller's %s passed on: %q", h, v)
		}
	}
	if got := r.Header.Get(CallerHeader); got != "spiffe://example.org/orders" {
		t.Errorf("caller header %q", got)
	}

	r2 := httptest.NewRequest("GET", "/x", nil)
	r2.Header[config.HeaderConsumer] = []string{"acme", "bob"}
	r2.TLS = &tls.ConnectionState{PeerCertificates: f.svid(t, "/edge").Certificates}
	serve(f.e, r2)
	if v, ok := r2.Header[config.HeaderConsumer]; ok {
		t.Errorf("two consumer values passed on: %q", v)
	}
	for _, l := range f.lines(t) {
		if _, ok := l["consumer"]; ok {
			t.Errorf("consumer recorded: %v", l)
		}
	}
}

// require: no consumer, or one from an untrusted caller, or the edge's
// anonymous one, is 401 consumer_required, counted and logged.
func TestConsumersRequire(t *testing.T) {
	f := newConsumersFixture(t, &config.ListenerConsumers{Require: true, Trusted: []string{"spiffe://example.org/edge"}})
	cases := []struct {
		caller string
		hdr    map[string]string
	}{
		{"/edge", nil},
		{"/orders", edgeConsumer}, // forged
		{"/edge", map[string]string{config.HeaderConsumer: config.ConsumerAnonymous, config.HeaderTier: config.TierAnonymous}},
	}
	for i, c := range cases {
		if code, _ := f.do(t, c.caller, c.hdr); code != http.StatusUnauthorized {
			t.Errorf("case %d: status %d, want 401", i, code)
		}
	}
	if code, r := f.do(t, "/edge", edgeConsumer); code != http.StatusNotFound || r.Header.Get(config.HeaderConsumer) != "acme" {
		t.Errorf("trusted consumer: status %d, headers %v", code, r.Header)
	}
	if got := f.denied(t); got != "3" {
		t.Errorf("denied counter %s, want 3", got)
	}
	log := f.logBuf.String()
	if n := strings.Count(log, `"msg":"consumer refused"`); n != 3 ||
		!strings.Contains(log, `"error":"consumer_required","caller":"spiffe://example.org/orders","consumer":""`) ||
		!strings.Contains(log, `"untrusted_consumer_header":true`) {
		t.Errorf("log:\n%s", log)
	}
	for _, l := range f.lines(t)[:3] {
		if l["status"] != float64(401) {
			t.Errorf("access line %v, want status 401", l)
		}
	}
}

// allow: a verified consumer not listed is 403 consumer_denied (and
// recorded as the consumer); a listed one passes; without require, a
// request without consumer passes too.
func TestConsumersAllow(t *testing.T) {
	f := newConsumersFixture(t, &config.ListenerConsumers{Trusted: []string{"spiffe://example.org/edge"}, Allow: []string{"acme"}})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set(config.HeaderConsumer, "bob")
	r.TLS = &tls.ConnectionState{PeerCertificates: f.svid(t, "/edge").Certificates}
	f.e.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "consumer bob may not call this service") {
		t.Fatalf("bob: %d %s", rec.Code, rec.Body)
	}
	if code, _ := f.do(t, "/edge", edgeConsumer); code != http.StatusNotFound {
		t.Errorf("acme: status %d", code)
	}
	if code, _ := f.do(t, "/edge", nil); code != http.StatusNotFound {
		t.Errorf("no consumer, no require: status %d", code)
	}
	// A forged bob from an untrusted caller is removed, not refused.
	if code, r := f.do(t, "/orders", map[string]string{config.HeaderConsumer: "bob"}); code != http.StatusNotFound || r.Header.Get(config.HeaderConsumer) != "" {
		t.Errorf("untrusted bob: status %d, headers %v", code, r.Header)
	}
	if got := f.denied(t); got != "1" {
		t.Errorf("denied counter %s, want 1", got)
	}
	if log := f.logBuf.String(); !strings.Contains(log, `"error":"consumer_denied","caller":"spiffe://example.org/edge","consumer":"bob"`) {
		t.Errorf("log:\n%s", log)
	}
	if l := f.lines(t); len(l) == 0 || l[0]["consumer"] != "bob" || l[0]["status"] != float64(403) {
		t.Errorf("access log %v", l)
	}
}

// The caller's allow list is checked first: a caller it refuses gets 403
// caller_denied whatever consumer it names.
func TestConsumersAfterCaller(t *testing.T) {
	c, err := NewConsumers(&config.ListenerConsumers{Require: true, Trusted: []string{"spiffe://example.org/edge"}})
	if err != nil {
		t.Fatal(err)
	}
	ca := pkitest.NewCA(t, spiffeid.RequireTrustDomainFromString("example.org"))
	e := entry(t, EntryOptions{Caller: &Caller{Allow: []pki.Pattern{pki.MustParsePattern("spiffe://example.org/edge")}, Consumers: c}})
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set(config.HeaderConsumer, "acme")
	r.TLS = &tls.ConnectionState{PeerCertificates: ca.SVID(t, ca.ID(t, "/orders")).Certificates}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "may not call") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

// A listener without consumers removes the consumer headers of every
// caller, mTLS or not.
func TestNoConsumersRemovesHeaders(t *testing.T) {
	ca := pkitest.NewCA(t, spiffeid.RequireTrustDomainFromString("example.org"))
	for name, e := range map[string]*Entry{"plain": entry(t, EntryOptions{}), "mtls": entry(t, EntryOptions{Caller: &Caller{}})} {
		r := httptest.NewRequest("GET", "/x", nil)
		for k, v := range edgeConsumer {
			r.Header.Set(k, v)
		}
		r.Header.Set(CallerHeader, "spiffe://example.org/admin")
		r.TLS = &tls.ConnectionState{PeerCertificates: ca.SVID(t, ca.ID(t, "/edge")).Certificates}
		if code := serve(e, r); code != http.StatusNotFound {
			t.Errorf("%s: status %d", name, code)
		}
		for _, h := range []string{config.HeaderConsumer, config.HeaderTier} {
			if v, ok := r.Header[h]; ok {
				t.Errorf("%s: %s passed on: %q", name, h, v)
			}
		}
		if got := r.Header.Get(CallerHeader); name == "plain" && got != "" || name == "mtls" && got != "spiffe://example.org/edge" {
			t.Errorf("%s: caller header %q", name, got)
		}
	}
}

// A listener with consumers must be an mTLS listener: elsewhere nothing
// would verify who vouches for the consumer.
func TestConsumersNeedMTLS(t *testing.T) {
	lc := &config.ListenerConsumers{Trusted: []string{"spiffe://example.org/edge"}}
	cfg := &config.Config{Listeners: []config.Listener{{Name: "public", Address: "127.0.0.1:0", Consumers: lc}}}
	if _, err := Build(cfg, Deps{Metrics: telemetry.NewMetrics()}); err == nil || !strings.Contains(err.Error(), "mtls") {
		t.Errorf("consumers on a plain listener: %v", err)
	}
	cfg.Listeners[0].MTLS = &config.ListenerMTLS{}
	snap, err := Build(cfg, Deps{Metrics: telemetry.NewMetrics()})
	if err != nil {
		t.Fatalf("consumers on an mtls listener: %v", err)
	}
	snap.Retire()
}

func BenchmarkConsumersTrusted(b *testing.B) {
	c, err := NewConsumers(&config.ListenerConsumers{Require: true, Trusted: []string{"spiffe://example.org/edge"}, Allow: []string{"acme", "globex"}})
	if err != nil {
		b.Fatal(err)
	}
	ca := pkitest.NewCA(b, spiffeid.RequireTrustDomainFromString("example.org"))
	id := ca.ID(b, "/edge")
	cl := claim{consumer: []string{"acme"}, tier: []string{"gold"}}
	e := &Entry{caller: &Caller{Consumers: c}, metrics: telemetry.NewMetrics(), logger: slog.Default()}
	r := httptest.NewRequest("GET", "/x", nil)
	w := httptest.NewRecorder()
	var x exchange.Exchange
	b.ReportAllocs()
	for b.Loop() {
		x.Consumer, x.Tier = "", ""
		if !e.admitConsumer(w, r, &x, nil, id, cl) {
			b.Fatal("refused")
		}
	}
}
