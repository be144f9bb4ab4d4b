package introspect

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// maxTokenLen bounds a presented token: longer ones are inactive without a
// call, so junk headers cost the server nothing. Real tokens, even JWTs
// full of claims, are a few KiB.
const maxTokenLen = 16 << 10

type key = [sha256.Size]byte

// Introspector asks the server about tokens and caches its answers. It is
// safe for concurrent use.
type Introspector struct {
	o         Options
	client    *http.Client
	ownClient bool
	authz     string // the Authorization header of every call
	ctx       context.Context
	cancel    context.CancelFunc
	calls     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	cache     map[key]entry
	evictions uint64 // cache entries evicted to make room
	inflight  map[key]*call
	logGate   logGate

	onWait func() // test hook: a caller is about to wait for a call
}

// entry is a cached answer: what Introspect returns until until.
type entry struct {
	res   *Result
	err   error
	until time.Time
}

// call is one request to the server, shared by every caller that asks
// about the same token meanwhile (a hand-made singleflight).
type call struct {
	done chan struct{}
	res  *Result
	err  error
}

// New checks o and returns an Introspector; Close releases it.
func New(o Options) (*Introspector, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	i := &Introspector{
		o:        o,
		client:   o.HTTPClient,
		authz:    basicAuth(o.ClientID, o.ClientSecret),
		cache:    make(map[key]entry),
		inflight: make(map[key]*call),
	}
	if i.client == nil {
		i.client, i.ownClient = defaultClient(), true
	}
	// Calls run on this context, not their first caller's: a caller that
	// gives up must not fail the others waiting for the same answer.
	i.ctx, i.cancel = context.WithCancel(context.Background())
	return i, nil
}

// basicAuth is client_secret_basic: RFC 6749 section 2.3.1 has id and
// secret form-url-encoded before they are joined and base64-encoded, so a
// colon in the id cannot shift the split.
func basicAuth(id, secret string) string {
	pair := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(pair))
}

// Introspect returns the Result of an active token, or ErrInactive,
// ErrAudience or ErrUnavailable. A cached answer costs a SHA-256 of the
// token and a map access. ctx bounds only this caller's wait.
func (i *Introspector) Introspect(ctx context.Context, token string) (*Result, error) {
	if token == "" || len(token) > maxTokenLen {
		return nil, ErrInactive
	}
	k := hashToken(token)
	c, e, hit := i.lookup(k, token)
	if hit {
		return e.res, e.err
	}
	if i.onWait != nil {
		i.onWait()
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
	}
}

// hashToken hashes token through a stack buffer when it fits: converting
// the string to a slice would allocate on every cached request.
func hashToken(token string) key {
	var buf [1024]byte
	if len(token) > len(buf) {
		return sha256.Sum256([]byte(token))
	}
	n := copy(buf[:], token)
	return sha256.Sum256(buf[:n])
}

// lookup returns the cached answer for k, or the call to wait for, which
// it starts if there is none.
func (i *Introspector) lookup(k key, token string) (*call, entry, bool) {
	now := i.o.Clock()
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil, entry{err: unavailable("introspector closed")}, true
	}
	if e, ok := i.cache[k]; ok && now.Before(e.until) {
		return nil, e, true
	}
	c := i.inflight[k]
	if c == nil {
		c = &call{done: make(chan struct{})}
		i.inflight[k] = c
		i.calls.Add(1)
		go i.run(k, token, c)
	}
	return c, entry{}, false
}

// run makes call c, caches its answer unless the server was unavailable,
// and hands it to the waiters.
func (i *Introspector) run(k key, token string, c *call) {
	defer i.calls.Done()
	res, err := i.fetch(token)
	now := i.o.Clock()
	var until time.Time
	if err == nil {
		res, until, err = i.judge(res, now)
	}
	i.mu.Lock()
	delete(i.inflight, k)
	if until.After(now) && !i.closed {
		i.store(k, entry{res: res, err: err, until: until})
	}
	warn, suppressed := i.logGate.pass(err, now)
	i.mu.Unlock()
	c.res, c.err = res, err
	close(c.done)
	i.log(k, res, err, until, warn, suppressed)
}

// Close cancels the calls in flight, whose callers get ErrUnavailable, as
// does every later Introspect.
func (i *Introspector) Close() {
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return
	}
	i.closed = true
	clear(i.cache)
	i.mu.Unlock()
	i.cancel()
	i.calls.Wait()
	if i.ownClient {
		i.client.CloseIdleConnections()
	}
}
