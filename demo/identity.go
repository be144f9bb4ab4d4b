package demo

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/workload"
)

// maxSocketPath is the longest unix socket path (sun_path holds 104 bytes
// on the BSDs, 108 on Linux, with the terminating NUL).
const maxSocketPath = 103

// socketDir chooses where the Workload API sockets go: logDir/sockets when
// every socket path fits (the longest socket name is longest), else a new
// short directory under /tmp, which the caller removes (temp true).
func socketDir(logDir string, longest int) (dir string, temp bool, err error) {
	dir = filepath.Join(logDir, "sockets")
	if len(dir)+1+longest <= maxSocketPath {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", false, err
		}
		return dir, false, os.Chmod(dir, 0o700) // whoever opens a socket gets its identity
	}
	dir, err = os.MkdirTemp("/tmp", "mgd-")
	if err != nil {
		return "", false, fmt.Errorf("a directory for the Workload API sockets (the log directory's path is too long for them): %w", err)
	}
	return dir, true, nil
}

// identities is the demo's trust domain: a CA in the log directory, the
// Workload API the edge and the sidecars take their SVIDs from (one socket
// each, served by this process), and meshctl's SVID as files.
type identities struct {
	ca         *pki.CA
	srv        *workload.Server
	sockets    string
	tempDir    bool
	meshctlDir string
}

// meshctlTTL is the lifetime of meshctl's SVID files (they are not rotated;
// a new demo issues new ones).
const meshctlTTL = 24 * time.Hour

// startIdentities loads the CA of logDir/ca (creating it the first time),
// serves each node's SPIFFE ID on its socket and writes meshctl's SVID to
// logDir/meshctl. sockets maps a socket path to its SPIFFE ID.
// On failure nothing is left served, and a temporary socket directory is
// removed.
func startIdentities(logDir, sockDir string, tempDir bool, sockets map[string]spiffeid.ID, log *slog.Logger) (_ *identities, err error) {
	id := &identities{sockets: sockDir, tempDir: tempDir, meshctlDir: filepath.Join(logDir, "meshctl")}
	defer func() {
		if err != nil {
			id.close()
		}
	}()
	td := spiffeid.RequireTrustDomainFromString(TrustDomain)
	caDir := filepath.Join(logDir, "ca")
	ca, err := pki.LoadCA(caDir)
	if errors.Is(err, pki.ErrNoCA) {
		if ca, err = pki.InitCA(caDir, td, pki.InitOptions{}); err == nil {
			log.Info("created the demo's CA", "dir", caDir, "trust_domain", TrustDomain)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the demo's CA in %s: %w", caDir, err)
	}
	if ca.TrustDomain() != td {
		return nil, fmt.Errorf("the CA in %s is for trust domain %s, not %s; remove the directory", caDir, ca.TrustDomain(), td)
	}
	id.ca = ca
	svid, err := ca.IssueX509SVID(spiffeid.RequireFromString(SpiffeID("meshctl")), meshctlTTL)
	if err != nil {
		return nil, err
	}
	if err := pki.WriteSVID(id.meshctlDir, svid, ca.Bundle()); err != nil {
		return nil, err
	}
	if id.srv, err = workload.New(ca, workload.Options{Logger: log.With("component", "workload-api")}); err != nil {
		return nil, err
	}
	for path, sid := range sockets {
		if err := id.srv.Add(path, sid); err != nil {
			return nil, fmt.Errorf("serving %s on %s: %w", sid, path, err)
		}
	}
	return id, nil
}

// meshctlFiles are meshctl's SVID, key and bundle (MESHCTL_CERT, _KEY, _BUNDLE).
func (id *identities) meshctlFiles() (cert, key, bundle string) {
	return filepath.Join(id.meshctlDir, pki.SVIDCertFile), filepath.Join(id.meshctlDir, pki.SVIDKeyFile),
		filepath.Join(id.meshctlDir, pki.SVIDBundleFile)
}

// close stops serving identities and removes the sockets (and their
// directory when it is a temporary one).
func (id *identities) close() error {
	var err error
	if id.srv != nil {
		err = id.srv.Close()
	}
	if id.tempDir {
		err = errors.Join(err, os.RemoveAll(id.sockets))
	}
	return err
}
