package introspect

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// 100 concurrent callers with the same uncached token make one call, and
// all get its answer.
func TestConcurrentCallersShareOneCall(t *testing.T) {
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
	const callers = 100
	var waiting, done sync.WaitGroup
	waiting.Add(callers)
	in.onWait = waiting.Done
	results := make(chan *Result, callers)
	for range callers {
		done.Go(func() {
			res, err := in.Introspect(context.Background(), testToken)
			if err != nil {
				t.Error(err)
			}
			results <- res
		})
	}
	waiting.Wait() // every caller waits for the call the server holds
	close(release)
	done.Wait()
	close(results)
	first := <-results
	for res := range results {
		if res != first || res.Subject != "alice" {
			t.Fatalf("result %+v, want the shared %+v", res, first)
		}
	}
	if n := p.requests.Load(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}

// Different tokens do not wait for each other.
func TestDifferentTokensCallSeparately(t *testing.T) {
	p := newIdP(t, answer(active(time.Time{}, "")))
	in, _ := newTest(t, p, Options{})
	var wg sync.WaitGroup
	for n := range 10 {
		wg.Go(func() {
			if _, err := in.Introspect(context.Background(), testToken+string(rune('a'+n))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := p.requests.Load(); n != 10 {
		t.Fatalf("%d calls, want 10", n)
	}
}
