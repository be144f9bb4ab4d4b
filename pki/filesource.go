package pki

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Defaults of FileSource.
const (
	DefaultPollInterval = 5 * time.Second
	// reloadDebounce coalesces the burst of events one WriteSVID causes
	// (three temp files, three renames) into one reload.
	reloadDebounce = 50 * time.Millisecond
)

// FileSource serves an X.509-SVID and its trust bundle from PEM files (as
// written by WriteSVID, by Kubernetes secrets, or by any agent) and reloads
// them when they change. It implements x509svid.Source and
// x509bundle.Source, so it plugs into ServerTLS/ClientTLS; since those read
// the source on every handshake, a reload takes effect for the next
// handshake without rebuilding any tls.Config or touching open connections.
//
// Change detection: fsnotify watches the directories holding the files (so
// renames and Kubernetes' symlink swaps are seen), and every poll interval
// the files are re-read and compared as a fallback for file systems without
// notifications. A reload happens only when the bytes differ from the last
// attempt. New content is accepted only if the certificate, the key and the
// bundle parse, the key matches the leaf, and the chain verifies against the
// bundle now; otherwise the error is logged (once per distinct content) and
// the previous identity keeps being served.
//
// Lookups (GetX509SVID, GetX509BundleForTrustDomain) are lock-free atomic
// loads and never block.
type FileSource struct {
	certFile, keyFile, bundleFile string
	logger                        *slog.Logger
	opts                          fileSourceOptions

	current atomic.Pointer[fileIdentity]

	mu      sync.Mutex    // serializes reload; guards lastSum and updated
	lastSum [32]byte      // hash of the content last attempted
	updated chan struct{} // closed and replaced on each successful reload

	watcher   *fsnotify.Watcher // nil if notifications are unavailable
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type fileIdentity struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

// FileSourceOption configures NewFileSource.
type FileSourceOption func(*fileSourceOptions)

type fileSourceOptions struct {
	poll     time.Duration
	onReload func(error)
	noNotify bool // tests: rely on polling alone
}

// WithPollInterval sets how often the files are re-read as a fallback to
// notifications (default DefaultPollInterval).
func WithPollInterval(d time.Duration) FileSourceOption {
	return func(o *fileSourceOptions) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithOnReload registers f, called after every reload attempt triggered by
// changed file content: with nil when the new identity was taken, with the
// error when it was rejected. f runs on the watcher goroutine and must not
// block.
func WithOnReload(f func(error)) FileSourceOption {
	return func(o *fileSourceOptions) { o.onReload = f }
}

// NewFileSource loads the SVID from certFile (chain, leaf first) and keyFile
// (PKCS#8) and the bundle of the SVID's trust domain from bundleFile, and
// starts watching them. It fails if the files are missing or invalid. A nil
// logger discards logs. Call Close to stop watching.
func NewFileSource(certFile, keyFile, bundleFile string, logger *slog.Logger, opts ...FileSourceOption) (*FileSource, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &FileSource{
		certFile:   certFile,
		keyFile:    keyFile,
		bundleFile: bundleFile,
		logger:     logger.With("component", "pki.filesource", "cert", certFile),
		opts:       fileSourceOptions{poll: DefaultPollInterval},
		updated:    make(chan struct{}),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	for _, o := range opts {
		o(&s.opts)
	}
	sum, id, err := s.read()
	if err != nil {
		return nil, fmt.Errorf("pki: file source: %w", err)
	}
	s.lastSum = sum
	s.current.Store(id)

	if s.opts.noNotify {
		// polling only
	} else if w, err := fsnotify.NewWatcher(); err != nil {
		s.logger.Warn("file notifications unavailable; polling only", "err", err, "interval", s.opts.poll)
	} else {
		s.watcher = w
		dirs := map[string]bool{}
		for _, f := range []string{certFile, keyFile, bundleFile} {
			dirs[filepath.Dir(f)] = true
		}
		for d := range dirs {
			if err := w.Add(d); err != nil {
				s.logger.Warn("cannot watch directory; polling covers it", "dir", d, "err", err)
			}
		}
	}
	go s.run()
	return s, nil
}

// GetX509SVID returns the current SVID. It implements x509svid.Source.
func (s *FileSource) GetX509SVID() (*x509svid.SVID, error) {
	return s.current.Load().svid, nil
}

// GetX509BundleForTrustDomain returns the bundle when td is the trust domain
// of the bundle file (the SVID's). It implements x509bundle.Source.
func (s *FileSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b := s.current.Load().bundle
	if b.TrustDomain() != td {
		return nil, fmt.Errorf("pki: no X.509 bundle for trust domain %q", td)
	}
	return b, nil
}

// Updated returns a channel that is closed the next time a changed identity
// is loaded. Take the channel before causing the change.
func (s *FileSource) Updated() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updated
}

// Close stops watching. Lookups keep returning the last identity.
func (s *FileSource) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if s.watcher != nil {
			err = s.watcher.Close()
		}
	})
	return err
}

func (s *FileSource) run() {
	defer close(s.done)
	poll := time.NewTicker(s.opts.poll)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()

	var events <-chan fsnotify.Event
	var errs <-chan error
	if s.watcher != nil {
		events, errs = s.watcher.Events, s.watcher.Errors
	}
	for {
		select {
		case <-s.stop:
			debounce.Stop()
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			debounce.Reset(reloadDebounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			s.logger.Warn("file watch error", "err", err)
		case <-debounce.C:
			s.reload()
		case <-poll.C:
			s.reload()
		}
	}
}

// reload re-reads the files and swaps in the new identity if their content
// changed and is valid.
func (s *FileSource) reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum, id, err := s.read()
	if sum == s.lastSum {
		return // unchanged (or the same bad content already reported)
	}
	s.lastSum = sum
	if err != nil {
		cur := s.current.Load().svid
		s.logger.Warn("rejected new SVID files; keeping the current identity",
			"err", err, "current_id", cur.ID.String(), "current_expiry", cur.Certificates[0].NotAfter)
	} else {
		old := s.current.Load().svid
		s.current.Store(id)
		leaf := id.svid.Certificates[0]
		s.logger.Info("loaded SVID", "id", id.svid.ID.String(), "serial", leaf.SerialNumber.Text(16),
			"not_after", leaf.NotAfter, "previous_id", old.ID.String())
		close(s.updated)
		s.updated = make(chan struct{})
	}
	if s.opts.onReload != nil {
		s.opts.onReload(err)
	}
}

// read reads and validates the three files. The sum covers the raw bytes
// (a missing file hashes as empty) and is returned even on error, so the
// same bad content is reported once.
func (s *FileSource) read() ([32]byte, *fileIdentity, error) {
	var raw [3][]byte
	var readErr error
	for i, f := range []string{s.certFile, s.keyFile, s.bundleFile} {
		b, err := os.ReadFile(f)
		if err != nil && readErr == nil {
			readErr = err
		}
		raw[i] = b
	}
	sum := sha256.Sum256(bytes.Join(raw[:], []byte{0}))
	if readErr != nil {
		return sum, nil, readErr
	}
	svid, err := x509svid.Parse(raw[0], raw[1])
	if err != nil {
		return sum, nil, fmt.Errorf("%s/%s: %w", s.certFile, s.keyFile, err)
	}
	bundle, err := x509bundle.Parse(svid.ID.TrustDomain(), raw[2])
	if err != nil {
		return sum, nil, fmt.Errorf("%s: %w", s.bundleFile, err)
	}
	if bundle.Empty() {
		return sum, nil, fmt.Errorf("%s: %w", s.bundleFile, errors.New("no certificates"))
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		return sum, nil, fmt.Errorf("SVID does not verify against %s: %w", s.bundleFile, err)
	}
	return sum, &fileIdentity{svid: svid, bundle: bundle}, nil
}
