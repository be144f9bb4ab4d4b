package demo

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The demo's token issuer, so that JWT authentication needs nothing outside
// the machine: an OpenID Connect provider reduced to what an edge needs to
// verify tokens, and a way to get one. It makes a P-256 key when the runner
// starts (never written anywhere: tokens die with the run) and serves
//
//	GET  /.well-known/openid-configuration  the discovery document
//	GET  /jwks.json                          the public key, as a JWKS
//	POST /token?consumer=NAME                a JWT for NAME, as plain text
//
// A token is signed ES256 and holds iss (the edge's auth.jwt[].issuer),
// sub (NAME: the consumer_claim default), aud (the definition's first
// audience, if any), iat, nbf and exp (TokenLifetime later). Nothing
// authenticates the caller of /token: the issuer listens on loopback, for
// the tour.

// TokenLifetime is how long a token of the demo's issuer is valid.
const TokenLifetime = time.Hour

// consumerNameRE is what consumers[].name accepts.
var consumerNameRE = regexp.MustCompile(`^[A-Za-z0-9._@:-]{1,128}$`)

// DemoIssuer is an auth.jwt definition the runner's issuer serves.
type DemoIssuer struct {
	Addr     string // 127.0.0.1:PORT, where it listens
	Issuer   string // the exact iss, auth.jwt[].issuer
	Audience string // the aud of its tokens, "" for none
}

// issuer is the running token issuer.
type issuer struct {
	DemoIssuer
	kid    string
	jwks   []byte
	signer jose.Signer
	srv    *http.Server
	done   chan error
}

// startIssuer makes a key and serves the issuer on d.Addr until close.
func startIssuer(d DemoIssuer, log *slog.Logger) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", d.Addr)
	if err != nil {
		return nil, fmt.Errorf("the token issuer: %w", err)
	}
	is := &issuer{DemoIssuer: d, kid: pub.KeyID, jwks: jwks, signer: signer, done: make(chan error, 1)}
	is.srv = &http.Server{Handler: is.handler(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { is.done <- is.srv.Serve(ln) }()
	log.Info("token issuer listening", "address", ln.Addr().String(), "issuer", d.Issuer, "kid", pub.KeyID)
	return is, nil
}

func (is *issuer) close() error {
	is.srv.Close()
	if err := <-is.done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (is *issuer) handler() http.Handler {
	mux := http.NewServeMux()
	base := "http://" + is.Addr
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                is.Issuer,
			"jwks_uri":                              base + "/jwks.json",
			"token_endpoint":                        base + "/token",
			"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
			"subject_types_supported":               []string{"public"},
			"response_types_supported":              []string{"token"},
		})
	})
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(is.jwks)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		consumer := r.URL.Query().Get("consumer")
		if !consumerNameRE.MatchString(consumer) {
			http.Error(w, "POST /token?consumer=NAME: NAME is 1..128 of letters, digits and ._@:- (a consumers[].name)", http.StatusBadRequest)
			return
		}
		tok, err := is.mint(consumer, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, tok)
	})
	return mux
}

// mint signs a token for consumer.
func (is *issuer) mint(consumer string, now time.Time) (string, error) {
	claims := jwt.Claims{
		Issuer:    is.Issuer,
		Subject:   consumer,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(TokenLifetime)),
	}
	if is.Audience != "" {
		claims.Audience = jwt.Audience{is.Audience}
	}
	return jwt.Signed(is.signer).Claims(claims).Serialize()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
