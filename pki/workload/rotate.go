package workload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
)

// maxBackoff caps the wait between failed signing attempts.
const maxBackoff = 30 * time.Second

// svidSet is one issued identity, ready to send: the messages are built once
// per rotation and shared, read-only, by every stream of the socket.
type svidSet struct {
	svid      *workloadpb.X509SVIDResponse
	bundles   *workloadpb.X509BundlesResponse
	bundleDER []byte
	leaf      *x509.Certificate
}

// workload is the state behind one socket.
type workload struct {
	srv  *Server
	path string
	spec Workload
	grpc *grpc.Server // set by AddWorkload before serving

	done chan struct{} // closed when the socket is removed

	mu        sync.Mutex
	cur       *svidSet
	changed   chan struct{} // closed and replaced when cur changes
	stopped   bool
	stopTimer func() bool
	failures  int
}

func newWorkload(s *Server, path string, spec Workload) *workload {
	return &workload{
		srv:     s,
		path:    path,
		spec:    spec,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
}

// watch returns the current set and a channel closed when it is replaced.
func (w *workload) watch() (*svidSet, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.changed
}

// issueFirst issues the first SVID synchronously and schedules its rotation.
func (w *workload) issueFirst() error {
	set, rotateAt, err := w.issue()
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur = set
	w.scheduleLocked(rotateAt.Sub(w.srv.clock.Now()))
	return nil
}

// rotate runs from the rotation timer: it issues a fresh key and SVID and
// publishes them, or on failure keeps the current SVID and retries with
// backoff.
func (w *workload) rotate() {
	set, rotateAt, err := w.issue()

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if err != nil {
		w.failures++
		d := w.backoff()
		attrs := []any{"socket", w.path, "id", w.spec.ID.String(), "attempt", w.failures, "retry_in", d, "err", err}
		if w.cur != nil {
			attrs = append(attrs, "current_expires", w.cur.leaf.NotAfter)
		}
		w.srv.log.Error("SVID rotation failed; serving the current SVID", attrs...)
		w.scheduleLocked(d)
		return
	}
	w.failures = 0
	w.cur = set
	close(w.changed)
	w.changed = make(chan struct{})
	w.srv.log.Debug("SVID rotated", "socket", w.path, "id", w.spec.ID.String(),
		"serial", set.leaf.SerialNumber.String(), "not_after", set.leaf.NotAfter, "next_rotation", rotateAt)
	w.scheduleLocked(rotateAt.Sub(w.srv.clock.Now()))
}

func (w *workload) scheduleLocked(d time.Duration) {
	if w.stopped {
		return
	}
	w.stopTimer = w.srv.clock.AfterFunc(max(d, 0), w.rotate)
}

// backoff is the wait before retry number w.failures: it starts at a
// twentieth of the TTL (at most 1s, at least 10ms) and doubles up to
// maxBackoff.
func (w *workload) backoff() time.Duration {
	d := min(w.srv.ttl/20, time.Second)
	d = max(d, 10*time.Millisecond)
	for i := 1; i < w.failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// issue creates a key, has it signed and builds the messages. It returns the
// instant at which the new SVID should be rotated: half-way through its
// usable life, from the later of NotBefore and the request time, so a
// backdated NotBefore does not pull rotation earlier.
func (w *workload) issue() (*svidSet, time.Time, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, time.Time{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, time.Time{}, err
	}
	requested := w.srv.clock.Now()
	chain, err := w.srv.signer.SignX509SVID(w.spec.ID, key.Public(), w.srv.ttl)
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(chain) == 0 || chain[0] == nil {
		return nil, time.Time{}, errors.New("signer returned no certificate")
	}
	leaf := chain[0]
	if id, err := x509svid.IDFromCert(leaf); err != nil {
		return nil, time.Time{}, fmt.Errorf("signer returned an invalid SVID: %w", err)
	} else if id != w.spec.ID {
		return nil, time.Time{}, fmt.Errorf("signer returned an SVID for %s, want %s", id, w.spec.ID)
	}
	start := leaf.NotBefore
	if requested.After(start) {
		start = requested
	}
	if !leaf.NotAfter.After(start) {
		return nil, time.Time{}, fmt.Errorf("signer returned an SVID already expired (not after %s)", leaf.NotAfter)
	}
	rotateAt := start.Add(leaf.NotAfter.Sub(start) / 2)

	td := w.srv.signer.TrustDomain()
	bundle := w.srv.signer.Bundle()
	if bundle == nil || len(bundle.X509Authorities()) == 0 {
		return nil, time.Time{}, errors.New("signer has no X.509 bundle")
	}
	if bundle.TrustDomain() != td {
		return nil, time.Time{}, fmt.Errorf("bundle is for %s, want %s", bundle.TrustDomain(), td)
	}
	var bundleDER, certsDER []byte
	for _, c := range bundle.X509Authorities() {
		bundleDER = append(bundleDER, c.Raw...)
	}
	for _, c := range chain {
		certsDER = append(certsDER, c.Raw...)
	}

	set := &svidSet{
		svid: &workloadpb.X509SVIDResponse{Svids: []*workloadpb.X509SVID{{
			SpiffeId:    w.spec.ID.String(),
			X509Svid:    certsDER,
			X509SvidKey: keyDER,
			Bundle:      bundleDER,
		}}},
		bundles: &workloadpb.X509BundlesResponse{
			Bundles: map[string][]byte{td.IDString(): bundleDER},
		},
		bundleDER: bundleDER,
		leaf:      leaf,
	}
	return set, rotateAt, nil
}

// stop ends rotation and wakes every stream so it returns.
func (w *workload) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	w.stopped = true
	if w.stopTimer != nil {
		w.stopTimer()
	}
	close(w.done)
}

// shutdown stops rotation, the gRPC server (closing its connections and
// listener) and removes the socket file.
func (w *workload) shutdown() {
	w.stop()
	if w.grpc != nil {
		w.grpc.Stop()
	}
	if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.srv.log.Warn("removing workload socket", "socket", w.path, "err", err)
	}
}
