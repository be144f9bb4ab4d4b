package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/urfave/cli/v2"
)

// runPKI runs `meshctl <args...>` with the pki command and returns its
// output and error.
func runPKI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{
		Name:           "meshctl",
		Commands:       []*cli.Command{pkiCommand()},
		Writer:         &out,
		ErrWriter:      &out,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"meshctl"}, args...))
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runPKI(t, args...)
	if err != nil {
		t.Fatalf("meshctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestPKIInitIssue(t *testing.T) {
	for _, inter := range []bool{false, true} {
		t.Run(map[bool]string{false: "root", true: "intermediate"}[inter], func(t *testing.T) {
			tmp := t.TempDir()
			caDir, outDir := filepath.Join(tmp, "ca"), filepath.Join(tmp, "edge")
			args := []string{"pki", "init", "--trust-domain", "example.org", "--dir", caDir}
			if inter {
				args = append(args, "--intermediate")
			}
			out := mustRun(t, args...)
			if !strings.Contains(out, "created CA for trust domain example.org") {
				t.Errorf("init output: %q", out)
			}
			fi, err := os.Stat(filepath.Join(caDir, "root.key"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("root.key: %v %v", fi, err)
			}
			_, err = os.Stat(filepath.Join(caDir, "intermediate.key"))
			if (err == nil) != inter {
				t.Fatalf("intermediate.key present=%v, want %v", err == nil, inter)
			}

			out = mustRun(t, "pki", "issue", "--ca-dir", caDir, "--spiffe-id", "spiffe://example.org/ns/prod/sa/edge", "--ttl", "2h", "--out", outDir)
			if !strings.Contains(out, "issued spiffe://example.org/ns/prod/sa/edge") {
				t.Errorf("issue output: %q", out)
			}
			svid, err := x509svid.Load(filepath.Join(outDir, "svid.pem"), filepath.Join(outDir, "svid_key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			td := spiffeid.RequireTrustDomainFromString("example.org")
			bundle, err := x509bundle.Load(td, filepath.Join(outDir, "bundle.pem"))
			if err != nil {
				t.Fatal(err)
			}
			id, _, err := x509svid.Verify(svid.Certificates, bundle)
			if err != nil || id.String() != "spiffe://example.org/ns/prod/sa/edge" {
				t.Fatalf("verify: %v %v", id, err)
			}
			if d := time.Until(svid.Certificates[0].NotAfter); d < 119*time.Minute || d > 121*time.Minute {
				t.Errorf("TTL %v, want 2h", d)
			}
			if fi, err := os.Stat(filepath.Join(outDir, "svid_key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("svid_key.pem: %v %v", fi, err)
			}
		})
	}
}

func TestPKIErrors(t *testing.T) {
	tmp := t.TempDir()
	caDir := filepath.Join(tmp, "ca")
	mustRun(t, "pki", "init", "--trust-domain", "example.org", "--dir", caDir)
	rootKey, _ := os.ReadFile(filepath.Join(caDir, "root.key"))

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"CA exists", []string{"pki", "init", "--trust-domain", "example.org", "--dir", caDir}, "already holds a CA; refusing to overwrite"},
		{"bad trust domain", []string{"pki", "init", "--trust-domain", "Example Org", "--dir", filepath.Join(tmp, "x")}, `invalid trust domain "Example Org"`},
		{"missing trust domain", []string{"pki", "init", "--dir", filepath.Join(tmp, "x")}, "trust-domain"},
		{"missing CA", []string{"pki", "issue", "--ca-dir", filepath.Join(tmp, "none"), "--spiffe-id", "spiffe://example.org/a", "--out", filepath.Join(tmp, "o")}, "no CA in"},
		{"bad ID", []string{"pki", "issue", "--ca-dir", caDir, "--spiffe-id", "example.org/a", "--out", filepath.Join(tmp, "o")}, `invalid SPIFFE ID "example.org/a"`},
		{"ID without path", []string{"pki", "issue", "--ca-dir", caDir, "--spiffe-id", "spiffe://example.org", "--out", filepath.Join(tmp, "o")}, "has no path"},
		{"wrong trust domain", []string{"pki", "issue", "--ca-dir", caDir, "--spiffe-id", "spiffe://other.org/a", "--out", filepath.Join(tmp, "o")}, "is in trust domain other.org, but the CA in"},
		{"bad ttl", []string{"pki", "issue", "--ca-dir", caDir, "--spiffe-id", "spiffe://example.org/a", "--ttl", "0s", "--out", filepath.Join(tmp, "o")}, "--ttl must be positive"},
		{"missing out", []string{"pki", "issue", "--ca-dir", caDir, "--spiffe-id", "spiffe://example.org/a"}, "out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runPKI(t, tt.args...)
			if err == nil {
				t.Fatalf("succeeded: %s", out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
	if after, _ := os.ReadFile(filepath.Join(caDir, "root.key")); !bytes.Equal(rootKey, after) {
		t.Fatal("root.key changed")
	}
	if _, err := os.Stat(filepath.Join(tmp, "o")); !os.IsNotExist(err) {
		t.Fatal("a failed issue left an output directory")
	}
}
