package pki_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

var (
	td      = spiffeid.RequireTrustDomainFromString("example.org")
	otherTD = spiffeid.RequireTrustDomainFromString("other.org")
	edgeID  = spiffeid.RequireFromPath(td, "/edge")
	payID   = spiffeid.RequireFromPath(td, "/ns/prod/sa/payments")
	ordID   = spiffeid.RequireFromPath(td, "/ns/prod/sa/orders")
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestInitCAFilesAndModes(t *testing.T) {
	for _, inter := range []bool{false, true} {
		t.Run(map[bool]string{false: "root", true: "intermediate"}[inter], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ca")
			ca, err := pki.InitCA(dir, td, pki.InitOptions{Intermediate: inter})
			if err != nil {
				t.Fatal(err)
			}
			if ca.TrustDomain() != td {
				t.Fatalf("trust domain %v", ca.TrustDomain())
			}
			if m := mode(t, dir); m != 0o700 {
				t.Errorf("dir mode %o, want 700", m)
			}
			if m := mode(t, filepath.Join(dir, "root.key")); m != 0o600 {
				t.Errorf("root.key mode %o, want 600", m)
			}
			if m := mode(t, filepath.Join(dir, "root.pem")); m&0o077 != 0o044 {
				t.Errorf("root.pem mode %o", m)
			}
			_, err = os.Stat(filepath.Join(dir, "intermediate.key"))
			if inter {
				if m := mode(t, filepath.Join(dir, "intermediate.key")); m != 0o600 {
					t.Errorf("intermediate.key mode %o, want 600", m)
				}
				mode(t, filepath.Join(dir, "intermediate.pem"))
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("intermediate.key without --intermediate: %v", err)
			}
			entries, _ := os.ReadDir(dir)
			want := map[bool]int{false: 2, true: 4}[inter]
			if len(entries) != want {
				t.Errorf("%d files in CA dir (temp files left?), want %d", len(entries), want)
			}

			root := ca.Root()
			if !root.IsCA || root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
				t.Errorf("root: IsCA %v KeyUsage %v", root.IsCA, root.KeyUsage)
			}
			if len(root.URIs) != 1 || root.URIs[0].String() != "spiffe://example.org" {
				t.Errorf("root URI SANs %v", root.URIs)
			}
			if root.NotAfter.Before(time.Now().Add(9 * 365 * 24 * time.Hour)) {
				t.Errorf("root expires %v, want ~10y", root.NotAfter)
			}
			if inter {
				im := ca.Intermediate()
				if im == nil || !im.IsCA || im.CheckSignatureFrom(root) != nil || len(im.URIs) != 1 {
					t.Fatalf("bad intermediate %+v", im)
				}
				if im.NotAfter.After(time.Now().Add(366*24*time.Hour)) || im.NotAfter.Before(time.Now().Add(364*24*time.Hour)) {
					t.Errorf("intermediate expires %v, want ~1y", im.NotAfter)
				}
			} else if ca.Intermediate() != nil {
				t.Error("unexpected intermediate")
			}
		})
	}
}

func TestLoadCARoundTrip(t *testing.T) {
	for _, inter := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "ca")
		ca, err := pki.InitCA(dir, td, pki.InitOptions{Intermediate: inter})
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := pki.LoadCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		if loaded.TrustDomain() != td || !loaded.Root().Equal(ca.Root()) {
			t.Fatal("loaded CA differs")
		}
		if (ca.Intermediate() == nil) != (loaded.Intermediate() == nil) ||
			(inter && !loaded.Intermediate().Equal(ca.Intermediate())) {
			t.Fatal("loaded intermediate differs")
		}
		// The loaded CA signs with the stored key: its SVIDs verify against
		// the original bundle.
		svid, err := loaded.IssueX509SVID(edgeID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := x509svid.Verify(svid.Certificates, ca.Bundle()); err != nil {
			t.Fatalf("intermediate=%v: %v", inter, err)
		}
	}
}

func TestInitCARefusesOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if _, err := pki.InitCA(dir, td, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	_, err := pki.InitCA(dir, td, pki.InitOptions{Intermediate: true})
	if !errors.Is(err, pki.ErrCAExists) {
		t.Fatalf("second InitCA: %v, want ErrCAExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	if !bytes.Equal(before, after) {
		t.Fatal("root.key changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "intermediate.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("intermediate written into existing CA")
	}

	// A single leftover file is enough to refuse.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "intermediate.key"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.InitCA(dir2, td, pki.InitOptions{}); !errors.Is(err, pki.ErrCAExists) {
		t.Fatalf("InitCA over leftover file: %v", err)
	}
}

func TestLoadCAErrors(t *testing.T) {
	if _, err := pki.LoadCA(t.TempDir()); !errors.Is(err, pki.ErrNoCA) {
		t.Fatalf("empty dir: %v, want ErrNoCA", err)
	}
	// A key that does not match its certificate.
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		if _, err := pki.InitCA(d, td, pki.InitOptions{Intermediate: true}); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(b, "intermediate.key"), filepath.Join(a, "intermediate.key"))
	if _, err := pki.LoadCA(a); err == nil {
		t.Fatal("LoadCA accepted a mismatched intermediate key")
	}
	// An intermediate of another root.
	copyFile(t, filepath.Join(b, "intermediate.pem"), filepath.Join(a, "intermediate.pem"))
	if _, err := pki.LoadCA(a); err == nil {
		t.Fatal("LoadCA accepted an intermediate of another root")
	}
	// Garbage.
	if err := os.WriteFile(filepath.Join(b, "root.pem"), []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadCA(b); err == nil {
		t.Fatal("LoadCA accepted garbage")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestIssuedSVIDFollowsSpec(t *testing.T) {
	for _, inter := range []bool{false, true} {
		ca, err := pki.NewCA(td, pki.InitOptions{Intermediate: inter})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		svid, err := ca.IssueX509SVID(payID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		wantLen := map[bool]int{false: 1, true: 2}[inter]
		if len(svid.Certificates) != wantLen {
			t.Fatalf("chain length %d, want %d", len(svid.Certificates), wantLen)
		}
		id, chains, err := x509svid.Verify(svid.Certificates, ca.Bundle())
		if err != nil {
			t.Fatalf("intermediate=%v: verify: %v", inter, err)
		}
		if id != payID || svid.ID != payID {
			t.Fatalf("ID %v / %v, want %v", id, svid.ID, payID)
		}
		if len(chains) != 1 || !chains[0][len(chains[0])-1].Equal(ca.Root()) {
			t.Fatal("chain does not end at the root")
		}
		leaf := svid.Certificates[0]
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != payID.String() {
			t.Errorf("URI SANs %v", leaf.URIs)
		}
		if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
			t.Error("unexpected non-URI SANs")
		}
		if leaf.IsCA || !leaf.BasicConstraintsValid {
			t.Error("leaf must carry CA:false")
		}
		if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement; leaf.KeyUsage != want {
			t.Errorf("KeyUsage %v, want %v", leaf.KeyUsage, want)
		}
		if len(leaf.ExtKeyUsage) != 2 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
			t.Errorf("ExtKeyUsage %v", leaf.ExtKeyUsage)
		}
		if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 {
			t.Errorf("serial %v", leaf.SerialNumber)
		}
		if d := start.Add(-pki.ClockSkew).Sub(leaf.NotBefore); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("NotBefore %v, want now-30s", leaf.NotBefore)
		}
		if d := leaf.NotAfter.Sub(start.Add(time.Hour)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("NotAfter %v, want now+1h", leaf.NotAfter)
		}
		// go-spiffe's own parser enforces the X.509-SVID rules.
		certPEM, keyPEM, err := svid.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x509svid.Parse(certPEM, keyPEM); err != nil {
			t.Fatalf("x509svid.Parse: %v", err)
		}
	}
}

func TestSerialsAreUnique(t *testing.T) {
	ca, err := pki.NewCA(td, pki.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 50 {
		s, err := ca.IssueX509SVID(edgeID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		k := s.Certificates[0].SerialNumber.String()
		if seen[k] {
			t.Fatal("duplicate serial")
		}
		seen[k] = true
	}
}

func TestTTLCappedBySigner(t *testing.T) {
	t.Run("intermediate", func(t *testing.T) {
		ca, err := pki.NewCA(td, pki.InitOptions{Intermediate: true, IntermediateTTL: 2 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		svid, err := ca.IssueX509SVID(edgeID, 10*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !svid.Certificates[0].NotAfter.Equal(ca.Intermediate().NotAfter) {
			t.Fatalf("leaf NotAfter %v, intermediate %v", svid.Certificates[0].NotAfter, ca.Intermediate().NotAfter)
		}
	})
	t.Run("root", func(t *testing.T) {
		ca, err := pki.NewCA(td, pki.InitOptions{RootTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		svid, err := ca.IssueX509SVID(edgeID, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !svid.Certificates[0].NotAfter.Equal(ca.Root().NotAfter) {
			t.Fatalf("leaf NotAfter %v, root %v", svid.Certificates[0].NotAfter, ca.Root().NotAfter)
		}
	})
	t.Run("intermediate capped by root", func(t *testing.T) {
		ca, err := pki.NewCA(td, pki.InitOptions{Intermediate: true, RootTTL: time.Hour, IntermediateTTL: 48 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if ca.Intermediate().NotAfter.After(ca.Root().NotAfter) {
			t.Fatal("intermediate outlives root")
		}
	})
}

func TestSignRejects(t *testing.T) {
	ca, err := pki.NewCA(td, pki.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ca.IssueX509SVID(spiffeid.RequireFromPath(otherTD, "/edge"), time.Hour)
	if !errors.Is(err, pki.ErrWrongTrustDomain) {
		t.Errorf("other trust domain: %v, want ErrWrongTrustDomain", err)
	}
	if _, err := ca.IssueX509SVID(td.ID(), time.Hour); err == nil {
		t.Error("issued an SVID for the trust domain ID (no path)")
	}
	if _, err := ca.IssueX509SVID(spiffeid.ID{}, time.Hour); err == nil {
		t.Error("issued an SVID for the zero ID")
	}
	if _, err := ca.IssueX509SVID(edgeID, 0); err == nil {
		t.Error("issued an SVID with TTL 0")
	}
	if _, err := ca.SignX509SVID(edgeID, nil, time.Hour); err == nil {
		t.Error("signed a nil key")
	}
	if _, err := pki.NewCA(spiffeid.TrustDomain{}, pki.InitOptions{}); err == nil {
		t.Error("NewCA accepted an empty trust domain")
	}
}

func TestCAConcurrentUse(t *testing.T) {
	ca, err := pki.NewCA(td, pki.InitOptions{Intermediate: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 16 {
		wg.Go(func() {
			for range 4 {
				s, err := ca.IssueX509SVID(edgeID, time.Minute)
				if err == nil {
					_, _, err = x509svid.Verify(s.Certificates, ca.Bundle())
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
