package workload

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// sockDir returns a short private directory (t.TempDir paths can exceed the
// unix socket path limit).
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newServer(t *testing.T, ca *testCA, opts Options) *Server {
	t.Helper()
	s, err := New(ca, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newSource(t *testing.T, path string) *workloadapi.X509Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr("unix://"+path)))
	if err != nil {
		t.Fatalf("NewX509Source(%s): %v", path, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func rawClient(t *testing.T, path string) workloadpb.SpiffeWorkloadAPIClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return workloadpb.NewSpiffeWorkloadAPIClient(conn)
}

func withHeader(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fetchOnce(path string) (*x509svid.SVID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr("unix://"+path))
}

func currentSerial(t *testing.T, src *workloadapi.X509Source) *big.Int {
	t.Helper()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	return svid.Certificates[0].SerialNumber
}

func TestX509SourceGetsVerifiableSVID(t *testing.T) {
	ca := newTestCA(t, "example.org")
	s := newServer(t, ca, Options{})
	path := filepath.Join(sockDir(t), "edge.sock")
	id := spiffeid.RequireFromString("spiffe://example.org/edge")
	if err := s.Add(path, id); err != nil {
		t.Fatal(err)
	}

	src := newSource(t, path)
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID != id {
		t.Fatalf("SVID ID = %s, want %s", svid.ID, id)
	}
	if got := svid.Certificates[0].NotAfter.Sub(svid.Certificates[0].NotBefore); got != DefaultTTL+ca.backdate {
		t.Errorf("lifetime = %v, want the default TTL %v (+%v backdating)", got, DefaultTTL, ca.backdate)
	}
	gotID, _, err := x509svid.Verify(svid.Certificates, src)
	if err != nil {
		t.Fatalf("bundle from the Workload API does not verify the SVID: %v", err)
	}
	if gotID != id {
		t.Fatalf("verified ID = %s, want %s", gotID, id)
	}
	// The key served matches the certificate.
	if _, err := tls.X509KeyPair(pemChain(svid)); err != nil {
		t.Fatalf("served key does not match the certificate: %v", err)
	}

	// A bundle from another CA of the same trust domain must not verify it
	// (the check above can fail).
	other := newTestCA(t, "example.org")
	if _, _, err := x509svid.Verify(svid.Certificates, other.Bundle()); err == nil {
		t.Fatal("SVID verified against an unrelated CA")
	}

	// FetchX509Bundles streams the trust domain's bundle.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bundles, err := workloadapi.FetchX509Bundles(ctx, workloadapi.WithAddr("unix://"+path))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundles.GetX509BundleForTrustDomain(ca.td)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Equal(ca.Bundle()) {
		t.Fatal("FetchX509Bundles returned a different bundle")
	}
}

func pemChain(svid *x509svid.SVID) ([]byte, []byte) {
	certs, key, err := svid.Marshal()
	if err != nil {
		panic(err)
	}
	return certs, key
}

func TestRotationReachesSourceAndTLS(t *testing.T) {
	ca := newTestCA(t, "example.org")
	s := newServer(t, ca, Options{TTL: 2 * time.Second})
	path := filepath.Join(sockDir(t), "svc.sock")
	id := spiffeid.RequireFromString("spiffe://example.org/svc")
	if err := s.Add(path, id); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, path)

	// A TLS server on the source; clients verify it by SPIFFE ID.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.TLSServerConfig(src))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { ln.Close(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	clientCfg := tlsconfig.TLSClientConfig(src, tlsconfig.AuthorizeID(id))
	presented := func() *big.Int {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), clientCfg)
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}

	prev := currentSerial(t, src)
	if got := presented(); got.Cmp(prev) != 0 {
		t.Fatalf("TLS server presents serial %v, source has %v", got, prev)
	}
	last := time.Now()
	for i := 1; i <= 3; i++ {
		var cur *big.Int
		// TTL 2s → rotation at 1s; allow scheduling slack but not a full TTL.
		waitFor(t, 1700*time.Millisecond, "rotation "+string(rune('0'+i)), func() bool {
			cur = currentSerial(t, src)
			return cur.Cmp(prev) != 0
		})
		now := time.Now()
		// Rotation at half-life, not at once: a backdated NotBefore must not
		// make the server rotate in a loop.
		if gap := now.Sub(last); i > 1 && gap < 300*time.Millisecond {
			t.Fatalf("rotation %d only %v after the previous one; want 0.5-1s (half of a 2s TTL whose NotAfter is truncated to the second)", i, gap)
		}
		got := presented()
		if got.Cmp(prev) == 0 {
			t.Fatalf("rotation %d: TLS server still presents the old certificate %v", i, prev)
		}
		if after := currentSerial(t, src); got.Cmp(cur) != 0 && got.Cmp(after) != 0 {
			t.Fatalf("rotation %d: TLS server presents %v, source has %v", i, got, after)
		}
		prev, last = cur, now
	}
}

func TestSocketPerWorkload(t *testing.T) {
	ca := newTestCA(t, "example.org")
	s := newServer(t, ca, Options{})
	dir := sockDir(t)
	ids := map[string]spiffeid.ID{
		filepath.Join(dir, "a.sock"): spiffeid.RequireFromString("spiffe://example.org/a"),
		filepath.Join(dir, "b.sock"): spiffeid.RequireFromString("spiffe://example.org/b"),
	}
	for p, id := range ids {
		if err := s.Add(p, id); err != nil {
			t.Fatal(err)
		}
	}
	for p, id := range ids {
		svid, err := fetchOnce(p)
		if err != nil {
			t.Fatalf("fetch on %s: %v", p, err)
		}
		if svid.ID != id {
			t.Fatalf("socket %s served %s, want %s", p, svid.ID, id)
		}
	}

	// Nothing is served elsewhere.
	if _, err := fetchOnce(filepath.Join(dir, "nobody.sock")); err == nil {
		t.Fatal("fetch on a path with no socket succeeded")
	}
	// The same path cannot be bound twice, and IDs must be in the trust domain.
	if err := s.Add(filepath.Join(dir, "a.sock"), spiffeid.RequireFromString("spiffe://example.org/c")); err == nil {
		t.Fatal("second Add on the same socket succeeded")
	}
	if err := s.Add(filepath.Join(dir, "x.sock"), spiffeid.RequireFromString("spiffe://other.org/x")); err == nil {
		t.Fatal("Add of an ID from another trust domain succeeded")
	}

	// Remove: an open stream ends, the file goes, new connections fail.
	a := filepath.Join(dir, "a.sock")
	stream, err := rawClient(t, a).FetchX509SVID(withHeader(context.Background()), &workloadpb.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(a); err != nil {
		t.Fatal(err)
	}
	recvErr(t, stream)
	if _, err := os.Lstat(a); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file still there after Remove: %v", err)
	}
	if c, err := net.Dial("unix", a); err == nil {
		c.Close()
		t.Fatal("dial succeeded after Remove")
	}
	if _, err := fetchOnce(a); err == nil {
		t.Fatal("fetch succeeded after Remove")
	}
	if err := s.Remove(a); err == nil {
		t.Fatal("second Remove succeeded")
	}
	// The other workload is unaffected.
	if svid, err := fetchOnce(filepath.Join(dir, "b.sock")); err != nil || svid.ID.Path() != "/b" {
		t.Fatalf("b after removing a: %v, %v", svid, err)
	}
}

// recvErr waits for the stream to fail and returns the error.
func recvErr(t *testing.T, stream grpc.ServerStreamingClient[workloadpb.X509SVIDResponse]) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		if err == io.EOF {
			t.Fatal("stream ended cleanly; want an error")
		}
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("open stream did not end")
		return nil
	}
}

func TestSecurityHeaderRequired(t *testing.T) {
	ca := newTestCA(t, "example.org")
	s := newServer(t, ca, Options{})
	path := filepath.Join(sockDir(t), "h.sock")
	if err := s.Add(path, spiffeid.RequireFromString("spiffe://example.org/h")); err != nil {
		t.Fatal(err)
	}
	c := rawClient(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	stream, err := c.FetchX509SVID(ctx, &workloadpb.X509SVIDRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("FetchX509SVID without header: %v, want InvalidArgument", err)
	}
	bstream, err := c.FetchX509Bundles(ctx, &workloadpb.X509BundlesRequest{})
	if err == nil {
		_, err = bstream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("FetchX509Bundles without header: %v, want InvalidArgument", err)
	}
	if _, err := c.FetchJWTSVID(ctx, &workloadpb.JWTSVIDRequest{Audience: []string{"x"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("FetchJWTSVID without header: %v, want InvalidArgument", err)
	}

	// With the header the same client is served; JWT is unimplemented.
	stream, err = c.FetchX509SVID(withHeader(ctx), &workloadpb.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("FetchX509SVID with header: %v", err)
	}
	if len(resp.Svids) != 1 || resp.Svids[0].SpiffeId != "spiffe://example.org/h" {
		t.Fatalf("unexpected response %v", resp)
	}
	if _, err := c.FetchJWTSVID(withHeader(ctx), &workloadpb.JWTSVIDRequest{Audience: []string{"x"}}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("FetchJWTSVID: %v, want Unimplemented", err)
	}
}

func TestSocketMode(t *testing.T) {
	ca := newTestCA(t, "example.org")
	s := newServer(t, ca, Options{})
	dir := sockDir(t)
	path := filepath.Join(dir, "m.sock")
	if err := s.Add(path, spiffeid.RequireFromString("spiffe://example.org/m")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s is %v, not a socket", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("socket mode %o, want 600", perm)
	}
	// No temporary binding directory is left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the socket", len(entries))
	}
}

func TestStaleSocketReplacedLiveOneRefused(t *testing.T) {
	ca := newTestCA(t, "example.org")
	s := newServer(t, ca, Options{})
	dir := sockDir(t)
	id := spiffeid.RequireFromString("spiffe://example.org/s")

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if err := s.Add(stale, id); err != nil {
		t.Fatalf("Add over a stale socket: %v", err)
	}
	if _, err := fetchOnce(stale); err != nil {
		t.Fatal(err)
	}

	live := filepath.Join(dir, "live.sock")
	l, err = net.ListenUnix("unix", &net.UnixAddr{Name: live, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.Add(live, id); err == nil {
		t.Fatal("Add over a live socket succeeded")
	}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(file, id); err == nil {
		t.Fatal("Add over a regular file succeeded")
	}
}

func TestCloseEndsStreamsAndRemovesSockets(t *testing.T) {
	ca := newTestCA(t, "example.org")
	s, err := New(ca, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := sockDir(t)
	paths := []string{filepath.Join(dir, "1.sock"), filepath.Join(dir, "2.sock")}
	var streams []grpc.ServerStreamingClient[workloadpb.X509SVIDResponse]
	for i, p := range paths {
		if err := s.Add(p, spiffeid.RequireFromString("spiffe://example.org/w"+string(rune('1'+i)))); err != nil {
			t.Fatal(err)
		}
		st, err := rawClient(t, p).FetchX509SVID(withHeader(context.Background()), &workloadpb.X509SVIDRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	bstream, err := rawClient(t, paths[0]).FetchX509Bundles(withHeader(context.Background()), &workloadpb.X509BundlesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bstream.Recv(); err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, st := range streams {
		recvErr(t, st)
	}
	done := make(chan error, 1)
	go func() { _, err := bstream.Recv(); done <- err }()
	select {
	case err := <-done:
		if err == nil || err == io.EOF {
			t.Fatalf("bundle stream after Close: %v, want an error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bundle stream did not end on Close")
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still exists after Close: %v", p, err)
		}
	}
	if err := s.Add(paths[0], spiffeid.RequireFromString("spiffe://example.org/late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestPeerUID(t *testing.T) {
	ca := newTestCA(t, "example.org")
	s := newServer(t, ca, Options{})
	dir := sockDir(t)
	me, other := os.Getuid(), os.Getuid()+1
	mine := filepath.Join(dir, "mine.sock")
	theirs := filepath.Join(dir, "theirs.sock")
	if err := s.AddWorkload(mine, Workload{ID: spiffeid.RequireFromString("spiffe://example.org/mine"), UID: &me}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddWorkload(theirs, Workload{ID: spiffeid.RequireFromString("spiffe://example.org/theirs"), UID: &other}); err != nil {
		t.Fatal(err)
	}
	if _, err := fetchOnce(mine); err != nil {
		t.Fatalf("caller with the expected uid: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := rawClient(t, theirs).FetchX509SVID(withHeader(ctx), &workloadpb.X509SVIDRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("caller with another uid: %v, want PermissionDenied", err)
	}
}

// fakeClock runs timers only when the test fires them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, ft)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !ft.stopped
		ft.stopped = true
		return was
	}
}

// pending returns the delays of the live timers from now.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for _, ft := range c.timers {
		if !ft.stopped {
			ds = append(ds, ft.at.Sub(c.now))
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// fire advances to the earliest live timer and runs it synchronously.
func (c *fakeClock) fire(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	var next *fakeTimer
	for _, ft := range c.timers {
		if !ft.stopped && (next == nil || ft.at.Before(next.at)) {
			next = ft
		}
	}
	if next == nil {
		c.mu.Unlock()
		t.Fatal("no pending timer")
	}
	next.stopped = true
	c.now = next.at
	c.mu.Unlock()
	next.f()
}

func TestRotationScheduleBackdatingAndRetry(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	ca := newTestCA(t, "example.org")
	ca.now = clock.Now
	ca.backdate = 30 * time.Second
	s := newServer(t, ca, Options{TTL: time.Hour, Clock: clock})
	path := filepath.Join(sockDir(t), "r.sock")
	if err := s.Add(path, spiffeid.RequireFromString("spiffe://example.org/r")); err != nil {
		t.Fatal(err)
	}
	wl := s.workloads[path]
	serial := func() *big.Int { cur, _ := wl.watch(); return cur.leaf.SerialNumber }

	// Half of the usable hour, not half of the backdated 1h30s.
	if got := clock.pending(); len(got) != 1 || got[0] != 30*time.Minute {
		t.Fatalf("pending timers %v, want one at 30m", got)
	}

	first := serial()
	_, changed := wl.watch()
	ca.fail.Store(true)
	wantBackoff := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	for i, want := range wantBackoff {
		clock.fire(t)
		if serial().Cmp(first) != 0 {
			t.Fatal("SVID changed although signing failed")
		}
		if got := clock.pending(); len(got) != 1 || got[0] != want {
			t.Fatalf("after failure %d pending %v, want one retry at %v", i+1, got, want)
		}
	}
	select {
	case <-changed:
		t.Fatal("streams notified although nothing changed")
	default:
	}

	ca.fail.Store(false)
	clock.fire(t)
	if serial().Cmp(first) == 0 {
		t.Fatal("SVID not rotated after signing recovered")
	}
	select {
	case <-changed:
	default:
		t.Fatal("streams not notified of the rotation")
	}
	if got := clock.pending(); len(got) != 1 || got[0] != 30*time.Minute {
		t.Fatalf("after rotation pending %v, want one at 30m", got)
	}

	// Remove stops the rotation timer.
	if err := s.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := clock.pending(); len(got) != 0 {
		t.Fatalf("timers pending after Remove: %v", got)
	}
}

func TestAddFailsWhenSignerFails(t *testing.T) {
	ca := newTestCA(t, "example.org")
	ca.fail.Store(true)
	s := newServer(t, ca, Options{})
	path := filepath.Join(sockDir(t), "f.sock")
	if err := s.Add(path, spiffeid.RequireFromString("spiffe://example.org/f")); err == nil {
		t.Fatal("Add succeeded without an SVID")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket created although Add failed: %v", err)
	}
}
