package transport

import (
	"context"
	"io"
	"log"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// identity returns a source holding a fresh SVID of ca for path and
// trusting bundles (ca's own when none are given).
func identity(t testing.TB, ca *pkitest.CA, path string, bundles ...*x509bundle.Bundle) *pkitest.Source {
	t.Helper()
	if len(bundles) == 0 {
		bundles = []*x509bundle.Bundle{ca.Bundle()}
	}
	return pkitest.NewSource(ca.SVID(t, ca.ID(t, path)), bundles...)
}

// newTransport starts a transport on a loopback port with src's identity,
// admitting the example.org trust domain, and shuts it down at cleanup.
func newTransport(t testing.TB, src *pkitest.Source, mod ...func(*Options)) *Transport {
	t.Helper()
	o := Options{
		BindAddr:         "127.0.0.1:0",
		SVIDs:            src,
		Bundles:          src,
		Authorize:        pki.AllowTrustDomain(td),
		Logger:           testLogger(t),
		HandshakeTimeout: 2 * time.Second,
	}
	for _, m := range mod {
		m(&o)
	}
	tr, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return tr
}

// logWriter forwards to t.Log until the test ends; memberlist goroutines
// may still log after that, which t.Log would turn into a panic.
type logWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	if !w.done.Load() && testing.Verbose() {
		w.t.Log(string(p))
	}
	return len(p), nil
}

func testWriter(t testing.TB) io.Writer {
	w := &logWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func stdLogger(t testing.TB, prefix string) *log.Logger {
	return log.New(testWriter(t), prefix, log.Lmicroseconds)
}

// countingHandler counts log records, for the rate-limit assertions.
type countingHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.mu.Lock()
	h.n++
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// holds checks that cond stays true for d: the one kind of wait a test of
// "nothing happens" cannot avoid.
func holds(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		<-tick.C
	}
}
