// Package jwtauth verifies JWT access tokens against their issuers'
// published keys (JWKS), for the gateway's auth policy to call per
// request. It is a library only: no HTTP middleware, no configuration
// parsing.
//
// A Verifier serves one issuer. Verify refuses a token longer than
// MaxTokenSize before parsing it, parses it as a compact JWS with the
// issuer's pinned algorithms (so "none", HS* and any alg not configured
// never reach a key), picks the key by kid from the issuer's set (a token
// without kid tries the set's keys that fit its alg, at most
// maxKidlessTries), checks the signature, then iss, aud, exp, nbf, iat
// (with ClockSkew) and RequiredClaims. Keys named or carried by the token
// itself (jwk, jku, x5u, x5c) are never used or fetched. Errors are *Error
// values matching the Err* sentinels, whose messages are fixed reasons
// safe to show a client (Reason); the token never appears in an error or a
// log. Temporary marks the one failure that is not the token's (no key
// set: answer 503 rather than 401 invalid_token).
//
// # Library
//
// Signatures, JWS parsing and JWK decoding are go-jose v4's
// (github.com/go-jose/go-jose/v4): it is already in the module graph
// through go-spiffe, so it adds no dependency, and its parser takes the
// allowed algorithms as an argument, which is how this package pins them
// per issuer instead of trusting the token's header.
//
// # Key refresh
//
// NewVerifier returns at once; one goroutine per Verifier fetches the set
// in the background (after OIDC discovery when no JWKS URI is configured),
// so start-up never waits for the IdP and Verify answers
// ErrKeysUnavailable until a set is there. The set is refetched after its
// Cache-Control max-age clamped into [MinInterval, MaxInterval] (1m, 1h by
// default), or MaxInterval without one. A fetch that fails (network error,
// non-200, timeout, unparsable, or no usable signing key) keeps the
// current set and is retried after a backoff from 1s doubling to 1m.
//
// A token whose kid is not in the set makes Verify ask for a fetch at
// once, since the IdP may have rotated keys: concurrent callers share one
// fetch and wait for it at most MaxWait (2s) and their context, and at most
// one such fetch happens per UnknownKidInterval (10s), so a flood of
// made-up kids cannot hammer the IdP.
//
// # Cache
//
// Verified tokens are cached by their SHA-256 until their exp and at most
// MaxTTL (5m), up to MaxEntries (10,000; random eviction), so a client
// repeating a token pays for the signature check once. The cache is
// emptied when the key set changes, so a withdrawn key's tokens do not
// outlive it there.
package jwtauth
