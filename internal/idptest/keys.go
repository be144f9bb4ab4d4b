package idptest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
)

// Hydra makes its own RS256 keys 4096 bits long, inside the request that
// first needs one (a token, the JWKS) or asks for one (POST
// /admin/keys/{set}). That takes seconds on an idle machine and tens of
// seconds on a loaded one, while Hydra's HTTP servers cut every response
// off after a fixed 10 s write timeout (ory/graceful's default, not
// configurable): the client sees EOF. So the harness makes the keys itself,
// 2048-bit RSA, and hands them to Hydra with PUT: StartHydra seeds both
// key sets the JWKS publishes, and RotateKeys adds a key to the access
// token set.

// Key sets of Hydra: the newest private key of a set signs.
const (
	// AccessTokenKeySet signs JWT access tokens.
	AccessTokenKeySet = "hydra.jwt.access-token"
	// IDTokenKeySet signs OpenID Connect ID tokens.
	IDTokenKeySet = "hydra.openid.id-token"
)

// rsaJWK is a private RSA JSON Web Key (RFC 7518 6.3) for signing RS256.
type rsaJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	D   string `json:"d"`
	P   string `json:"p"`
	Q   string `json:"q"`
	DP  string `json:"dp"`
	DQ  string `json:"dq"`
	QI  string `json:"qi"`
}

// newSigningKey makes a fresh 2048-bit RS256 signing key with a random kid.
func newSigningKey() (rsaJWK, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return rsaJWK{}, err
	}
	if len(k.Primes) != 2 {
		return rsaJWK{}, fmt.Errorf("RSA key with %d primes", len(k.Primes))
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return rsaJWK{}, err
	}
	b64 := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	return rsaJWK{
		Kty: "RSA",
		Kid: "idptest-" + hex.EncodeToString(id),
		Use: "sig",
		Alg: "RS256",
		N:   b64(k.N),
		E:   b64(big.NewInt(int64(k.E))),
		D:   b64(k.D),
		P:   b64(k.Primes[0]),
		Q:   b64(k.Primes[1]),
		DP:  b64(k.Precomputed.Dp),
		DQ:  b64(k.Precomputed.Dq),
		QI:  b64(k.Precomputed.Qinv),
	}, nil
}

// seedKeys gives each key set the JWKS publishes a key of the harness's
// making before anything asks Hydra for one.
func (h *Hydra) seedKeys() error {
	for _, set := range []string{AccessTokenKeySet, IDTokenKeySet} {
		k, err := newSigningKey()
		if err != nil {
			return err
		}
		body, err := json.Marshal(map[string][]rsaJWK{"keys": {k}})
		if err != nil {
			return err
		}
		if _, err := h.send("PUT", h.admin+"/admin/keys/"+set, "application/json", body, nil, 200); err != nil {
			return fmt.Errorf("seeding key set %s: %v", set, err)
		}
	}
	return nil
}
