package workload

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
)

// DefaultTTL is the lifetime requested for each X.509-SVID when
// Options.TTL is zero.
const DefaultTTL = time.Hour

// maxSocketPath is the longest unix socket path accepted: sun_path holds 108
// bytes on Linux (104 on the BSDs), including the terminating NUL.
const maxSocketPath = 103

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("workload: server closed")

// Signer issues X.509-SVIDs for the server. (*pki.CA satisfies it.)
//
// SignX509SVID returns the certificate chain for pub, leaf first, then any
// intermediates; the leaf carries id as its only URI SAN. It must be safe
// for concurrent use. Bundle returns the X.509 authorities of TrustDomain.
type Signer interface {
	TrustDomain() spiffeid.TrustDomain
	SignX509SVID(id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration) ([]*x509.Certificate, error)
	Bundle() *x509bundle.Bundle
}

// Clock is the time source of rotation; tests replace it with a fake.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, unless the returned
	// stop function is called first (stop reports whether it prevented f).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Options configure a Server. The zero value is usable.
type Options struct {
	// TTL is the lifetime requested for each SVID; DefaultTTL when zero.
	TTL time.Duration
	// Clock drives rotation; the wall clock when nil.
	Clock Clock
	// Logger receives rotation failures and rejected callers; discarded
	// when nil.
	Logger *slog.Logger
}

// Workload is the identity bound to one socket.
type Workload struct {
	// ID is the SPIFFE ID served on the socket; it must belong to the
	// signer's trust domain.
	ID spiffeid.ID
	// UID, when set, is the only user id whose connections are served
	// (checked with SO_PEERCRED; Linux only). Calls from another uid get
	// PERMISSION_DENIED.
	UID *int
}

// Server serves the SPIFFE Workload API on one unix socket per workload.
// It is safe for concurrent use.
type Server struct {
	signer Signer
	ttl    time.Duration
	clock  Clock
	log    *slog.Logger

	mu        sync.Mutex
	closed    bool
	workloads map[string]*workload // by cleaned socket path
}

// New returns a Server issuing SVIDs from signer. It serves nothing until
// Add is called.
func New(signer Signer, opts Options) (*Server, error) {
	if signer == nil {
		return nil, errors.New("workload: nil signer")
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("workload: negative TTL %v", opts.TTL)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		signer:    signer,
		ttl:       opts.TTL,
		clock:     opts.Clock,
		log:       opts.Logger,
		workloads: make(map[string]*workload),
	}, nil
}

// Add serves id on a new unix socket at socketPath. See AddWorkload.
func (s *Server) Add(socketPath string, id spiffeid.ID) error {
	return s.AddWorkload(socketPath, Workload{ID: id})
}

// AddWorkload issues a first SVID for w (failing if the signer fails) and
// starts serving it on a new unix socket at socketPath, mode 0600. The
// directory must exist. A stale socket left at the path by a dead process is
// replaced; a live one, or any other file, is an error.
func (s *Server) AddWorkload(socketPath string, w Workload) error {
	if w.ID.IsZero() {
		return errors.New("workload: zero SPIFFE ID")
	}
	if td := s.signer.TrustDomain(); !w.ID.MemberOf(td) {
		return fmt.Errorf("workload: %s is not in trust domain %s", w.ID, td)
	}
	if socketPath == "" {
		return errors.New("workload: empty socket path")
	}
	path := filepath.Clean(socketPath)
	if len(path) > maxSocketPath {
		return fmt.Errorf("workload: socket path %q is %d bytes, longer than %d", path, len(path), maxSocketPath)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.workloads[path]; ok {
		return fmt.Errorf("workload: socket %s already served", path)
	}

	wl := newWorkload(s, path, w)
	if err := wl.issueFirst(); err != nil {
		return fmt.Errorf("workload: first SVID for %s: %w", w.ID, err)
	}
	lis, err := s.listen(path)
	if err != nil {
		wl.stop()
		return err
	}
	wl.grpc = grpc.NewServer(
		grpc.Creds(peerCreds{}),
		grpc.ChainUnaryInterceptor(wl.unaryGuard),
		grpc.ChainStreamInterceptor(wl.streamGuard),
	)
	workloadpb.RegisterSpiffeWorkloadAPIServer(wl.grpc, &api{wl: wl})
	s.workloads[path] = wl
	go func() {
		if err := wl.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("workload API socket stopped", "socket", path, "id", w.ID.String(), "err", err)
		}
	}()
	s.log.Info("serving workload identity", "socket", path, "id", w.ID.String())
	return nil
}

// Remove stops serving socketPath: open streams end, the socket file is
// removed and new connections fail.
func (s *Server) Remove(socketPath string) error {
	path := filepath.Clean(socketPath)
	s.mu.Lock()
	wl, ok := s.workloads[path]
	delete(s.workloads, path)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("workload: no socket %s", path)
	}
	wl.shutdown()
	return nil
}

// Close stops every socket, ends their streams and removes the socket files.
// Add fails afterwards. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	wls := s.workloads
	s.workloads = make(map[string]*workload)
	s.mu.Unlock()
	for _, wl := range wls {
		wl.shutdown()
	}
	return nil
}

// listen creates the unix socket at path with mode 0600 and no window in
// which it is reachable with a looser mode: it binds inside a fresh 0700
// directory next to path, chmods, and then hard-links the socket into place
// (link fails rather than replace a file that appeared meanwhile).
func (s *Server) listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("workload: socket directory: %w", err)
	} else if fi.Mode().Perm()&0o022 != 0 {
		s.log.Warn("workload socket directory is writable by others; callers could replace sockets", "dir", dir, "mode", fi.Mode().Perm().String())
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}

	tmp, err := os.MkdirTemp(dir, ".wl")
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpSock := filepath.Join(tmp, "s")
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpSock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("workload: listen: %w", err)
	}
	lis.SetUnlinkOnClose(false) // we unlink path ourselves, in shutdown
	if err := os.Chmod(tmpSock, 0o600); err != nil {
		lis.Close()
		return nil, fmt.Errorf("workload: %w", err)
	}
	if err := os.Link(tmpSock, path); err != nil {
		lis.Close()
		return nil, fmt.Errorf("workload: %w", err)
	}
	return lis, nil
}

// removeStale removes a socket at path that nobody listens on. Anything else
// at path is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("workload: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("workload: %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("workload: socket %s is in use", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("workload: removing stale socket: %w", err)
	}
	return nil
}
