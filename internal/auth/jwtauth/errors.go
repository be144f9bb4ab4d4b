package jwtauth

import "errors"

// Error is a rejected token. Its message is a short, fixed reason that is
// safe to show a client (in a WWW-Authenticate error_description): it never
// contains the token, a claim value taken from the token, or an IdP's
// response, so a caller may echo it without leaking the credential.
type Error struct {
	reason string
	kind   *Error // the sentinel this error is a case of; nil for sentinels
}

func (e *Error) Error() string { return e.reason }

// Is makes a specific case match its sentinel: errors.Is(ErrClosed,
// ErrKeysUnavailable) is true.
func (e *Error) Is(target error) bool { return e.kind != nil && e.kind == target }

// Temporary reports whether the failure is the gateway's, not the token's:
// no key set could be had. RFC 6750 callers answer 503 rather than 401
// invalid_token for it.
func (e *Error) Temporary() bool { return e == ErrKeysUnavailable || e.kind == ErrKeysUnavailable }

// The sentinels callers test with errors.Is. All but ErrKeysUnavailable map
// to RFC 6750 invalid_token (401); ErrTooLarge may be answered 400
// invalid_request.
var (
	ErrMalformed       = &Error{reason: "malformed token"}
	ErrTooLarge        = &Error{reason: "token too large"}
	ErrAlgorithm       = &Error{reason: "signing algorithm not allowed"}
	ErrUnknownKey      = &Error{reason: "unknown signing key"}
	ErrSignature       = &Error{reason: "invalid signature"}
	ErrExpired         = &Error{reason: "token expired"}
	ErrNotYetValid     = &Error{reason: "token not yet valid"}
	ErrIssuer          = &Error{reason: "wrong issuer"}
	ErrAudience        = &Error{reason: "wrong audience"}
	ErrClaim           = &Error{reason: "required claim missing or wrong"}
	ErrKeysUnavailable = &Error{reason: "signing keys unavailable"}

	// ErrClosed is returned by Verify after Close.
	ErrClosed = &Error{reason: "verifier closed", kind: ErrKeysUnavailable}
	// errIssuedInFuture is an iat beyond the clock skew: a misconfigured or
	// forging issuer. It is a case of ErrNotYetValid.
	errIssuedInFuture = &Error{reason: "token issued in the future", kind: ErrNotYetValid}
	// errNoExpiry: an access token without exp would be valid forever.
	errNoExpiry = &Error{reason: "token has no expiry", kind: ErrClaim}
)

// Reason returns err's client-safe reason: the message of an *Error, else a
// generic one (so a non-jwtauth error's text is never shown).
func Reason(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.reason
	}
	return "invalid token"
}
