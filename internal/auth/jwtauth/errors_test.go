package jwtauth

import (
	"errors"
	"fmt"
	"testing"
)

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		ErrExpired:                           "token expired",
		fmt.Errorf("wrapped: %w", ErrClosed): "verifier closed",
		errNoExpiry:                          "token has no expiry",
		errors.New("secret detail"):          "invalid token",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	if !errors.Is(errIssuedInFuture, ErrNotYetValid) || !errors.Is(errNoExpiry, ErrClaim) || !errors.Is(ErrClosed, ErrKeysUnavailable) {
		t.Error("a specific error does not match its sentinel")
	}
	if errors.Is(ErrExpired, ErrNotYetValid) || errors.Is(ErrMalformed, ErrKeysUnavailable) {
		t.Error("distinct sentinels match each other")
	}
	if !ErrKeysUnavailable.Temporary() || !ErrClosed.Temporary() || ErrExpired.Temporary() || ErrUnknownKey.Temporary() {
		t.Error("Temporary wrong")
	}
}
