package jwtauth

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary strings to Verify: it must not panic, must
// answer with a *Error whose message does not quote the input, and may
// accept only a token that really is the issuer's. Seeds (a valid token
// of edFixed, alg none, garbage, ...) are in testdata/fuzz/FuzzVerify;
// tokens of the per-run keys are added here.
func FuzzVerify(f *testing.F) {
	p := newIDP(f, rsaA(), ecA(), edFixed)
	v, _ := ready(f, p, nil)
	f.Add(rsaA().sign(f, claims(nil), nil))
	f.Add(ecA().withKid("").sign(f, claims(nil), nil))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(context.Background(), token)
		if err == nil {
			if c == nil || c.Issuer != testIssuer {
				t.Fatalf("accepted with claims %+v", c)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T %v is not a *Error", err, err)
		}
		if len(token) > 16 && strings.Contains(err.Error(), token) {
			t.Fatal("error quotes the token")
		}
	})
}

// TestFuzzSeedIsValid keeps the committed "valid token" seed valid, so the
// fuzzer starts from a token that passes every check.
func TestFuzzSeedIsValid(t *testing.T) {
	b, err := os.ReadFile("testdata/fuzz/FuzzVerify/valid_eddsa")
	if err != nil {
		t.Fatal(err)
	}
	lit, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "go test fuzz v1\nstring(")
	tok, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if !ok || err != nil {
		t.Fatalf("bad seed file: %v", err)
	}
	p := newIDP(t, edFixed)
	v, _ := ready(t, p, nil)
	mustVerify(t, v, tok)
}
