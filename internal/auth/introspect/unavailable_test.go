package introspect

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func wantUnavailable(t *testing.T, res *Result, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) || res != nil {
		t.Fatalf("got %+v, %v; want ErrUnavailable", res, err)
	}
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

// bigAnswer is an active answer of exactly n bytes.
func bigAnswer(n int) string {
	const head, tail = `{"active":true,"pad":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func redirect(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusTemporaryRedirect) }
}

func TestUnavailable(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"500":            status(http.StatusInternalServerError, `{"active":true}`),
		"401":            status(http.StatusUnauthorized, `{"error":"invalid_client"}`),
		"redirect":       redirect("/elsewhere"),
		"not json":       answer(`<html>active</html>`),
		"empty":          answer(``),
		"array":          answer(`[{"active":true}]`),
		"null":           answer(`null`),
		"truncated":      answer(`{"active":true,"sub":"al`),
		"exp string":     answer(`{"active":true,"exp":"1735689600"}`),
		"exp huge":       answer(`{"active":true,"exp":1e300}`),
		"sub number":     answer(`{"active":true,"sub":42}`),
		"aud object":     answer(`{"active":true,"aud":{"a":1}}`),
		"scope array":    answer(`{"active":true,"scope":["read"]}`),
		"oversized":      answer(bigAnswer(maxBody + 1)),
		"hijacked close": func(w http.ResponseWriter, _ *http.Request) { panic(http.ErrAbortHandler) },
	} {
		t.Run(name, func(t *testing.T) {
			in, _ := newTest(t, newIdP(t, h), Options{})
			res, err := in.Introspect(context.Background(), testToken)
			wantUnavailable(t, res, err)
		})
	}
}

func TestBodyOfMaxSizeAccepted(t *testing.T) {
	in, _ := newTest(t, newIdP(t, answer(bigAnswer(maxBody))), Options{})
	if _, err := in.Introspect(context.Background(), testToken); err != nil {
		t.Fatal(err)
	}
}

func TestServerDown(t *testing.T) {
	p := newIdP(t, answer(`{"active":true}`))
	in, _ := newTest(t, p, Options{})
	p.Close()
	res, err := in.Introspect(context.Background(), testToken)
	wantUnavailable(t, res, err)
}

// A server that never answers costs a caller Timeout, not more.
func TestServerSlow(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := newIdP(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	const timeout = 100 * time.Millisecond
	in, _ := newTest(t, p, Options{Timeout: timeout})
	start := time.Now()
	res, err := in.Introspect(context.Background(), testToken)
	wantUnavailable(t, res, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want a deadline", err)
	}
	if d := time.Since(start); d < timeout || d > timeout+time.Second {
		t.Fatalf("returned after %v, Timeout %v", d, timeout)
	}
}

// A caller that gives up gets ErrUnavailable at once; the call goes on for
// the others and its answer is cached.
func TestCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	p := newIdP(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		answer(active(time.Time{}, ""))(w, r)
	})
	in, _ := newTest(t, p, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	in.onWait = cancel
	res, err := in.Introspect(ctx, testToken)
	wantUnavailable(t, res, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	in.onWait = nil
	done := make(chan error)
	go func() {
		_, err := in.Introspect(context.Background(), testToken)
		done <- err
	}()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	introspectAt(t, in, p, testToken, nil, 1)
}

func TestClose(t *testing.T) {
	p := newIdP(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	in, _ := newTest(t, p, Options{Timeout: time.Hour})
	waiting := make(chan struct{})
	in.onWait = func() { close(waiting) }
	done := make(chan error)
	go func() {
		_, err := in.Introspect(context.Background(), testToken)
		done <- err
	}()
	<-waiting
	in.Close()
	if err := <-done; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("in-flight call: %v", err)
	}
	res, err := in.Introspect(context.Background(), testToken)
	wantUnavailable(t, res, err)
	in.Close() // again: no-op
}
