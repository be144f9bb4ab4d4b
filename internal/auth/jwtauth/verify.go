package jwtauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/meshgate/meshgate/internal/clock"
)

// Verifier verifies the access tokens of one issuer. It is safe for
// concurrent use. Its refresher goroutine runs until Close.
type Verifier struct {
	opts   IssuerOptions
	algs   []jose.SignatureAlgorithm
	clk    clock.Clock
	log    *slog.Logger
	client *http.Client
	// ownClient: the client is ours, so Close may drop its connections.
	ownClient bool

	keys   atomic.Pointer[keySet] // nil until the first successful fetch
	cache  *tokenCache
	closed atomic.Bool

	ctx       context.Context // cancelled by Close; fetches run under it
	cancel    context.CancelFunc
	done      chan struct{} // closed when run returns
	kick      chan struct{} // Verify asks run for a fetch
	closeOnce sync.Once

	mu       sync.Mutex
	pending  *round // the next fetch, which Verify calls wait for
	inflight *round // the fetch running now
	// lastDemand is when Verify last caused a fetch for a kid the loaded
	// set lacks, lastKeyless when it last caused one with no set loaded
	// yet: each bounds its own kind to one per UnknownKidInterval, so that
	// the requests of a starting edge leave the unknown-kid refetch to a
	// key rotated in afterwards.
	lastDemand  time.Time
	lastKeyless time.Time
	stopped     bool // run has returned: no round will be served

	// Owned by run.
	backoff time.Duration
	jwksURI string // discovered
}

// NewVerifier validates o and starts fetching the issuer's keys in the
// background; it does not wait for them, so an unreachable IdP never holds
// up start-up (Verify answers ErrKeysUnavailable until keys are there).
func NewVerifier(o IssuerOptions) (*Verifier, error) {
	o, algs, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		opts: o, algs: algs, clk: o.Clock, log: o.Logger, client: o.HTTPClient,
		cache:   newTokenCache(o.Cache),
		done:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		pending: newRound(), // the initial fetch: early Verify calls wait for it
	}
	if v.client == nil {
		// A transport of our own, so that Close can drop its idle
		// connections (and their goroutines).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		v.client, v.ownClient = &http.Client{Timeout: 5 * time.Second, Transport: tr}, true
	}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	go v.run()
	return v, nil
}

// Ready reports whether the Verifier has a key set.
func (v *Verifier) Ready() bool { return v.keys.Load() != nil }

// CacheStats reports the verified tokens cached and those evicted to make
// room (the cache is keyed by client-supplied tokens: its bound is
// CacheOptions.MaxEntries).
func (v *Verifier) CacheStats() (entries int, evictions uint64) { return v.cache.stats() }

// Close stops the refresher and waits for it; Verify then returns
// ErrClosed. Close may be called more than once.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		v.closed.Store(true)
		v.cancel()
		<-v.done
		if v.ownClient {
			v.client.CloseIdleConnections()
		}
	})
}

// Verify checks token's signature against the issuer's keys and its
// claims against the options, and returns the claims. The returned Claims
// may be shared with other callers (it comes from the cache): read only.
// Errors are *Error, matching one of the Err* sentinels.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if v.closed.Load() {
		return nil, ErrClosed
	}
	if len(token) > MaxTokenSize {
		return nil, ErrTooLarge
	}
	key := v.cache.key(token)
	if c, ok := v.cache.get(key, v.clk.Now()); ok {
		return c, nil
	}
	// ParseSignedCompact refuses any alg not pinned (so "none" and HS*
	// never reach a key), and Verify below is only ever handed keys from
	// the issuer's set: jwk, jku, x5u and x5c headers are never used.
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, ErrAlgorithm
		}
		return nil, ErrMalformed
	}
	if len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	hdr := jws.Signatures[0].Header
	keys, err := v.keysFor(ctx, hdr.KeyID, hdr.Algorithm)
	if err != nil {
		return nil, err
	}
	payload, err := verifyWithAny(jws, keys)
	if err != nil {
		return nil, err
	}
	now := v.clk.Now()
	c, err := v.checkClaims(payload, now)
	if err != nil {
		return nil, err
	}
	v.cache.put(key, c, now)
	return c, nil
}

// keysFor returns the keys to try for a token's kid and alg. Without a set,
// or without a key for the kid, it asks for a fetch first (shared and rate
// limited: see requestRefresh) and waits for it, boundedly.
func (v *Verifier) keysFor(ctx context.Context, kid, alg string) ([]any, error) {
	if set := v.keys.Load(); set != nil {
		if keys := set.lookup(kid, alg); len(keys) > 0 {
			return keys, nil
		}
	}
	v.awaitRefresh(ctx)
	set := v.keys.Load()
	switch {
	case v.closed.Load():
		return nil, ErrClosed
	case set == nil:
		return nil, ErrKeysUnavailable
	}
	if keys := set.lookup(kid, alg); len(keys) > 0 {
		return keys, nil
	}
	return nil, ErrUnknownKey
}

// verifyWithAny returns the payload if one of keys verifies the signature.
// Several keys are tried only for a token without kid (at most
// maxKidlessTries) or when an IdP reuses a kid.
func verifyWithAny(jws *jose.JSONWebSignature, keys []any) ([]byte, error) {
	for _, k := range keys {
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, ErrSignature
}
