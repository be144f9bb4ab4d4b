package introspect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	testID     = "gateway"
	testSecret = "s3cret"
	testToken  = "ory_at_ZmFrZXRva2VuZmFrZXRva2VuZmFrZXRva2Vu.c2lnbmF0dXJlc2lnbmF0dXJl"
)

// idp is a fake authorization server that counts the calls it gets.
type idp struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	handler  http.HandlerFunc
	gone     chan struct{} // closed when the test ends
}

func newIdP(t testing.TB, h http.HandlerFunc) *idp {
	p := &idp{handler: h, gone: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		// Reading the body lets the server watch the connection, so that
		// r.Context() ends when the client gives up.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		// And r.Context() ends with the test, so no handler outlives it.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-p.gone:
				cancel()
			case <-ctx.Done():
			}
		}()
		r = r.WithContext(ctx)
		p.mu.Lock()
		h := p.handler
		p.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(p.Close)                  // waits for the handlers, which…
	t.Cleanup(func() { close(p.gone) }) // …this, run first, unblocks
	return p
}

// set changes the server's answers from now on.
func (p *idp) set(h http.HandlerFunc) {
	p.mu.Lock()
	p.handler = h
	p.mu.Unlock()
}

// answer sends body with status 200.
func answer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

// active is the answer about an active token expiring at exp (none if
// zero), with extra members.
func active(exp time.Time, extra string) string {
	body := `{"active":true,"sub":"alice","client_id":"app","scope":"read write","aud":["api"]`
	if !exp.IsZero() {
		body += fmt.Sprintf(`,"exp":%d`, exp.Unix())
	}
	return body + extra + "}"
}

// newTest returns an Introspector of p on a fake clock at t0. o's zero
// fields get test values.
func newTest(t *testing.T, p *idp, o Options) (*Introspector, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	if o.Endpoint == "" {
		o.Endpoint = p.URL + "/oauth2/introspect"
	}
	if o.ClientID == "" {
		o.ClientID, o.ClientSecret = testID, testSecret
	}
	if o.Clock == nil {
		o.Clock = clk.Now
	}
	in, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return in, clk
}

// cached returns the number of cached answers.
func (i *Introspector) cached() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.cache)
}
