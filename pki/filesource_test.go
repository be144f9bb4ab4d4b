package pki_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

const deadline = 10 * time.Second

func TestWriteSVID(t *testing.T) {
	ca, err := pki.NewCA(td, pki.InitOptions{Intermediate: true})
	if err != nil {
		t.Fatal(err)
	}
	svid, err := ca.IssueX509SVID(edgeID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := pki.WriteSVID(dir, svid, ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Join(dir, "svid_key.pem")); m != 0o600 {
		t.Errorf("key mode %o", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %o", m)
	}
	loaded, err := x509svid.Load(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "svid_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID != edgeID || len(loaded.Certificates) != 2 || !loaded.Certificates[0].Equal(svid.Certificates[0]) {
		t.Fatalf("loaded %v with %d certs", loaded.ID, len(loaded.Certificates))
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "svid_key.pem"))
	if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Error("key is not PKCS#8 PEM")
	}
	bundle, err := x509bundle.Load(td, filepath.Join(dir, "bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x509svid.Verify(loaded.Certificates, bundle); err != nil {
		t.Fatal(err)
	}
	// Overwrite in place; no temp files remain.
	if err := pki.WriteSVID(dir, svid, ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d entries in out dir, want 3", len(entries))
	}
	if err := pki.WriteSVID(dir, &x509svid.SVID{}, ca.Bundle()); err == nil {
		t.Error("wrote an empty SVID")
	}
	if err := pki.WriteSVID(dir, svid, x509bundle.New(td)); err == nil {
		t.Error("wrote an empty bundle")
	}
}

// fileFixture is a directory of SVID files served by a FileSource.
type fileFixture struct {
	dir    string
	ca     *pkitest.CA
	src    *pki.FileSource
	reload chan error
}

func newFileFixture(t *testing.T, opts ...pki.FileSourceOption) *fileFixture {
	t.Helper()
	f := &fileFixture{dir: t.TempDir(), ca: pkitest.NewCA(t, td, pkitest.WithIntermediate()), reload: make(chan error, 16)}
	f.write(t, f.ca.SVID(t, payID), f.ca.Bundle())
	opts = append(opts, pki.WithOnReload(func(err error) { f.reload <- err }))
	src, err := pki.NewFileSource(f.path("svid.pem"), f.path("svid_key.pem"), f.path("bundle.pem"), slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	f.src = src
	return f
}

func (f *fileFixture) path(name string) string { return filepath.Join(f.dir, name) }

func (f *fileFixture) write(t *testing.T, svid *x509svid.SVID, bundle *x509bundle.Bundle) {
	t.Helper()
	if err := pki.WriteSVID(f.dir, svid, bundle); err != nil {
		t.Fatal(err)
	}
}

// replace atomically replaces one file with raw bytes.
func (f *fileFixture) replace(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := f.path("." + name + ".test")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path(name)); err != nil {
		t.Fatal(err)
	}
}

func (f *fileFixture) serial(t *testing.T) string {
	t.Helper()
	s, err := f.src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	return s.Certificates[0].SerialNumber.String()
}

// waitReload waits for the next reload attempt and returns its result.
func (f *fileFixture) waitReload(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.reload:
		return err
	case <-time.After(deadline):
		t.Fatal("no reload within deadline")
		return nil
	}
}

func TestFileSourceReloads(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []pki.FileSourceOption
	}{
		{"notifications", []pki.FileSourceOption{pki.WithPollInterval(time.Hour)}},
		{"polling", []pki.FileSourceOption{pki.WithoutNotifications(), pki.WithPollInterval(20 * time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFileFixture(t, tc.opts...)
			first := f.serial(t)
			if b, err := f.src.GetX509BundleForTrustDomain(td); err != nil || !b.HasX509Authority(f.ca.Root()) {
				t.Fatalf("bundle: %v", err)
			}
			if _, err := f.src.GetX509BundleForTrustDomain(otherTD); err == nil {
				t.Fatal("bundle for another trust domain")
			}

			updated := f.src.Updated()
			next := f.ca.SVID(t, payID)
			f.write(t, next, f.ca.Bundle())
			select {
			case <-updated:
			case <-time.After(deadline):
				t.Fatal("no update within deadline")
			}
			if got := f.serial(t); got == first || got != next.Certificates[0].SerialNumber.String() {
				t.Fatalf("serial %s after reload; first %s, want %s", got, first, next.Certificates[0].SerialNumber)
			}
		})
	}
}

func TestFileSourceKeepsIdentityOnBadFiles(t *testing.T) {
	f := newFileFixture(t, pki.WithPollInterval(50*time.Millisecond))
	good := f.serial(t)
	otherKeySVID := f.ca.SVID(t, payID)
	keyPEM, err := encodeKeyForTest(otherKeySVID)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(f.path("svid.pem"))
	current, err := f.src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	otherCA := pkitest.OtherCA(t, td)
	// Same key, other CA: only chain verification can reject it.
	untrustedPEM, _, _ := otherCA.SVID(t, payID, pkitest.Key(current.PrivateKey)).Marshal()
	otherBundle, _ := otherCA.Bundle().Marshal()
	expiredPEM, _, _ := f.ca.SVID(t, payID, pkitest.Key(current.PrivateKey), pkitest.Expired()).Marshal()

	for _, bad := range []struct {
		name, file string
		data       []byte
	}{
		{"corrupt certificate", "svid.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
		{"truncated certificate", "svid.pem", certPEM[:len(certPEM)/2]},
		{"key of another SVID", "svid_key.pem", keyPEM},
		{"empty bundle", "bundle.pem", nil},
		{"SVID of an untrusted CA", "svid.pem", untrustedPEM},
		{"bundle of another CA", "bundle.pem", otherBundle},
		{"expired SVID", "svid.pem", expiredPEM},
	} {
		t.Run(bad.name, func(t *testing.T) {
			orig, _ := os.ReadFile(f.path(bad.file))
			f.replace(t, bad.file, bad.data)
			if err := f.waitReload(t); err == nil {
				t.Fatal("bad files accepted")
			}
			if got := f.serial(t); got != good {
				t.Fatalf("identity changed to %s on bad files", got)
			}
			// Polling must not report the same bad content again, and
			// restoring the files is a (good) change.
			f.replace(t, bad.file, orig)
			if err := f.waitReload(t); err != nil {
				t.Fatalf("restore: %v", err)
			}
		})
	}
	// Files removed: old identity stays.
	if err := os.Remove(f.path("svid.pem")); err != nil {
		t.Fatal(err)
	}
	if err := f.waitReload(t); err == nil {
		t.Fatal("missing file accepted")
	}
	if f.serial(t) != good {
		t.Fatal("identity lost when the file vanished")
	}
}

func encodeKeyForTest(s *x509svid.SVID) ([]byte, error) {
	_, key, err := s.Marshal()
	return key, err
}

func TestNewFileSourceErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.NewFileSource(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "svid_key.pem"), filepath.Join(dir, "bundle.pem"), nil); err == nil {
		t.Fatal("NewFileSource without files")
	}
	ca := pkitest.NewCA(t, td)
	if err := pki.WriteSVID(dir, ca.SVID(t, edgeID, pkitest.Expired()), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	_, err := pki.NewFileSource(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "svid_key.pem"), filepath.Join(dir, "bundle.pem"), nil)
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("NewFileSource with an expired SVID: %v", err)
	}
}

// TestFileSourceServesRotationOverTLS: a server using a FileSource presents
// the rewritten certificate on the next handshake, same tls.Config, while
// lookups run concurrently with reloads.
func TestFileSourceServesRotationOverTLS(t *testing.T) {
	f := newFileFixture(t, pki.WithPollInterval(time.Hour))
	client := pkitest.NewSource(f.ca.SVID(t, edgeID), f.ca.Bundle())
	scfg := pki.ServerTLS(f.src, f.src, pki.AllowIDs(edgeID))
	ccfg := pki.ClientTLS(client, client, pki.AllowIDs(payID))
	served := func() string {
		r := dial(t, scfg, tlsClient(ccfg))
		if r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("server: %v; client: %v", r.serverErr, r.clientErr)
		}
		return r.client.PeerCertificates[0].SerialNumber.String()
	}
	first := served()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := f.src.GetX509SVID(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	updated := f.src.Updated()
	next := f.ca.SVID(t, payID)
	f.write(t, next, f.ca.Bundle())
	select {
	case <-updated:
	case <-time.After(deadline):
		t.Fatal("no update")
	}
	close(stop)
	wg.Wait()
	if got := served(); got == first || got != next.Certificates[0].SerialNumber.String() {
		t.Fatalf("served %s, first %s, want %s", got, first, next.Certificates[0].SerialNumber)
	}
}
