package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// File names written by WriteSVID.
const (
	SVIDCertFile   = "svid.pem"
	SVIDKeyFile    = "svid_key.pem"
	SVIDBundleFile = "bundle.pem"
)

// WriteSVID writes svid.pem (the chain, leaf first), svid_key.pem (PKCS#8,
// mode 0600) and bundle.pem (the bundle's authorities) into dir, creating
// dir with mode 0700 if needed. Each file is replaced atomically (temp file
// in dir, fsync, rename), so a reader such as FileSource never sees half a
// file. The bundle is written first and the certificate last, so a watcher
// that reloads between two renames sees at worst a mismatched key, which it
// rejects while keeping its current identity.
func WriteSVID(dir string, svid *x509svid.SVID, bundle *x509bundle.Bundle) error {
	if svid == nil || len(svid.Certificates) == 0 || svid.PrivateKey == nil {
		return errors.New("pki: WriteSVID: incomplete SVID")
	}
	if bundle == nil || bundle.Empty() {
		return errors.New("pki: WriteSVID: empty bundle")
	}
	key, err := encodeKey(svid.PrivateKey)
	if err != nil {
		return err
	}
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	files := []pemFile{
		{SVIDBundleFile, encodeCerts(bundle.X509Authorities()...), 0o644},
		{SVIDKeyFile, key, 0o600},
		{SVIDCertFile, encodeCerts(svid.Certificates...), 0o644},
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("pki: write %s: %w", f.name, err)
		}
	}
	return nil
}

func encodeCerts(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

func encodeKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCerts parses all PEM "CERTIFICATE" blocks; any other content is an
// error, and so is finding none.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data that is not PEM")
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// parseKey parses one PEM "PRIVATE KEY" (PKCS#8) block holding a signing key.
func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("unexpected PEM block %q, want PRIVATE KEY (PKCS#8)", block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", key)
	}
	return signer, nil
}

// writeTemp writes data to a new temp file next to path with the given mode,
// synced to disk, and returns its name.
func writeTemp(path string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// writeFileAtomic replaces path with data in one rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeFileExclusive creates path with data, atomically, failing with an
// fs.ErrExist error if path exists (a hard link never replaces a file).
func writeFileExclusive(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
