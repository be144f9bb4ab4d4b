package jwtauth

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestCloseLeaksNoGoroutine: verifiers in every state (ready, fetching
// from a hanging IdP, waiting out a backoff) leave nothing running.
func TestCloseLeaksNoGoroutine(t *testing.T) {
	good, hanging, failing := newIDP(t, rsaA()), newIDP(t, rsaA()), newIDP(t, rsaA())
	hanging.set(func(p *idp) { p.hang = true })
	failing.set(func(p *idp) { p.status = 503 })
	base := runtime.NumGoroutine()
	for i := range 50 {
		p := []*idp{good, hanging, failing}[i%3]
		o := testOptions(p, nil)
		o.Clock = nil // the real clock: real timers must stop too
		v, err := NewVerifier(o)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			eventually(t, "a fetch", func() bool { return p.fetches.Load() > 0 })
		}
		v.Close()
	}
	eventually(t, "goroutines back to the start", func() bool { return runtime.NumGoroutine() <= base })
}

func TestVerifyAfterClose(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	tok := rsaA().sign(t, claims(nil), nil)
	mustVerify(t, v, tok)
	v.Close()
	v.Close() // idempotent
	wantErr(t, v, tok, ErrClosed)
	if !errors.Is(ErrClosed, ErrKeysUnavailable) {
		t.Error("ErrClosed is not a case of ErrKeysUnavailable")
	}
}

func TestCloseReleasesWaitingVerify(t *testing.T) {
	p := newIDP(t, rsaA())
	p.set(func(p *idp) { p.hang = true })
	v, _ := start(t, p, func(o *IssuerOptions) { o.Refresh.MaxWait = time.Minute })
	errc := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), rsaA().sign(t, claims(nil), nil))
		errc <- err
	}()
	eventually(t, "the fetch to hang", func() bool { return p.fetches.Load() == 1 })
	v.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrKeysUnavailable) {
			t.Errorf("Verify = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Verify still waiting after Close")
	}
}
