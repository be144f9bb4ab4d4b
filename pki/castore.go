package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// File names inside a CA directory.
const (
	RootCertFile         = "root.pem"
	RootKeyFile          = "root.key"
	IntermediateCertFile = "intermediate.pem"
	IntermediateKeyFile  = "intermediate.key"
)

type pemFile struct {
	name string
	data []byte
	mode os.FileMode
}

var caFiles = []string{RootCertFile, RootKeyFile, IntermediateCertFile, IntermediateKeyFile}

// InitCA creates a new CA for td (see NewCA) and writes it into dir, which is
// created with mode 0700 if it does not exist (an existing directory keeps
// its mode). Keys are written with mode 0600. InitCA refuses, with
// ErrCAExists, to touch a directory that already holds any CA file; each
// file is created exclusively, so two concurrent InitCA calls cannot both
// succeed.
func InitCA(dir string, td spiffeid.TrustDomain, opts InitOptions) (*CA, error) {
	for _, name := range caFiles {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("pki: %w: %s exists", ErrCAExists, filepath.Join(dir, name))
		}
	}
	ca, err := NewCA(td, opts)
	if err != nil {
		return nil, err
	}
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}

	rootKey, err := encodeKey(ca.rootKey)
	if err != nil {
		return nil, err
	}
	files := []pemFile{
		{RootKeyFile, rootKey, 0o600},
		{RootCertFile, encodeCerts(ca.root), 0o644},
	}
	if inter := ca.Intermediate(); inter != nil {
		interKey, err := encodeKey(ca.signerKey)
		if err != nil {
			return nil, err
		}
		files = append(files,
			pemFile{IntermediateKeyFile, interKey, 0o600},
			pemFile{IntermediateCertFile, encodeCerts(inter), 0o644})
	}

	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeFileExclusive(path, f.data, f.mode); err != nil {
			for _, w := range written {
				_ = os.Remove(w)
			}
			if errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("pki: %w: %s exists", ErrCAExists, path)
			}
			return nil, fmt.Errorf("pki: write %s: %w", path, err)
		}
		written = append(written, path)
	}
	return ca, nil
}

// LoadCA reads a CA written by InitCA. It checks that each key matches its
// certificate and that the intermediate (if any) is signed by the root. A
// directory without root.pem yields ErrNoCA.
func LoadCA(dir string) (*CA, error) {
	rootPath := filepath.Join(dir, RootCertFile)
	if _, err := os.Stat(rootPath); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pki: %w: %s not found", ErrNoCA, rootPath)
	}
	root, rootKey, err := loadCertAndKey(rootPath, filepath.Join(dir, RootKeyFile))
	if err != nil {
		return nil, err
	}

	var inter *x509.Certificate
	var interKey = rootKey
	interPath := filepath.Join(dir, IntermediateCertFile)
	if _, err := os.Stat(interPath); err == nil {
		inter, interKey, err = loadCertAndKey(interPath, filepath.Join(dir, IntermediateKeyFile))
		if err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pki: %w", err)
	}

	ca, err := newCAFromParts(root, rootKey, inter, interKey)
	if err != nil {
		return nil, fmt.Errorf("pki: CA in %s: %w", dir, err)
	}
	return ca, nil
}

func loadCertAndKey(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", certPath, err)
	}
	if len(certs) != 1 {
		return nil, nil, fmt.Errorf("pki: %s: want 1 certificate, found %d", certPath, len(certs))
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", keyPath, err)
	}
	return certs[0], key, nil
}

// mkdirPrivate creates dir with mode 0700 (independent of the umask) unless
// it already exists.
func mkdirPrivate(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("pki: %s is not a directory", dir)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
