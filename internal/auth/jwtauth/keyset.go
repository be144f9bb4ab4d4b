package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// maxKeys bounds the keys read from one set: a real IdP publishes a
	// handful; thousands would only cost parsing time and memory.
	maxKeys = 100
	// maxKidlessTries bounds the keys a token without kid is tried with, so
	// such a token costs at most this many signature checks.
	maxKidlessTries = 8
	// minRSABits refuses RSA keys too short to trust.
	minRSABits = 2048
)

// keySet is one fetched JWKS, indexed for Verify: by kid and algorithm to
// the keys that can check that algorithm (kid "" holds the kid-less tries).
// It is immutable once built and swapped in whole.
type keySet struct {
	byKidAlg map[kidAlg][]any // values: *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
	digest   [sha256.Size]byte
	size     int
}

type kidAlg struct{ kid, alg string }

// lookup returns the keys that may have signed a token with this kid and
// alg. It does not allocate.
func (s *keySet) lookup(kid, alg string) []any {
	return s.byKidAlg[kidAlg{kid, alg}]
}

// parseKeySet builds a keySet from a JWKS document, keeping only the public
// signing keys that fit one of algs. Keys it cannot use are skipped rather
// than failing the set (an IdP may publish encryption or unknown key types
// beside its signing keys); a set left with no usable key is an error, so
// that it never replaces a working one.
func parseKeySet(body []byte, algs []jose.SignatureAlgorithm) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("JWKS is not JSON: %w", err)
	}
	s := &keySet{byKidAlg: map[kidAlg][]any{}, digest: sha256.Sum256(body)}
	for _, raw := range doc.Keys[:min(len(doc.Keys), maxKeys)] {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if s.add(k, algs) {
			s.size++
		}
	}
	if s.size == 0 {
		return nil, errors.New("JWKS has no usable signing key")
	}
	return s, nil
}

// add indexes k under each of algs it can check; it reports whether k was
// usable at all.
func (s *keySet) add(k jose.JSONWebKey, algs []jose.SignatureAlgorithm) bool {
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	// Public drops a private part an IdP should not have published, and
	// yields an invalid key for symmetric ("oct") keys, which are refused:
	// an HMAC key in the set is how alg-confusion attacks get in.
	pub := k.Public()
	if !pub.Valid() {
		return false
	}
	used := false
	for _, a := range algs {
		alg := string(a)
		if (k.Algorithm != "" && k.Algorithm != alg) || !keyFits(pub.Key, alg) {
			continue
		}
		if k.KeyID != "" {
			s.index(kidAlg{k.KeyID, alg}, pub.Key)
		}
		if len(s.byKidAlg[kidAlg{"", alg}]) < maxKidlessTries {
			s.index(kidAlg{"", alg}, pub.Key)
		}
		used = true
	}
	return used
}

func (s *keySet) index(ka kidAlg, key any) { s.byKidAlg[ka] = append(s.byKidAlg[ka], key) }

// keyFits reports whether key is of the type (and curve) that alg needs.
func keyFits(key any, alg string) bool {
	switch key := key.(type) {
	case *rsa.PublicKey:
		return (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && key.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey:
		return alg == ecdsaAlg(key.Curve.Params().Name)
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// ecdsaAlg is the one JWS algorithm for a curve (RFC 7518 3.4).
func ecdsaAlg(curve string) string {
	switch curve {
	case "P-256":
		return "ES256"
	case "P-384":
		return "ES384"
	case "P-521":
		return "ES512"
	}
	return ""
}
