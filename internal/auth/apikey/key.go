package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	// Prefix starts every generated key, so that secret scanners can spot
	// leaked keys and ParseHash can spot a key pasted in clear.
	Prefix = "mgk_"
	// HashPrefix starts the stored form and names the algorithm, leaving
	// room for another one later.
	HashPrefix = "sha256:"
	// MaxKeyLen bounds a presented key: longer ones are refused unhashed,
	// so junk headers cost nothing. Generated keys are 56 bytes.
	MaxKeyLen = 256

	keyBytes = 32
	hexLen   = 2 * sha256.Size
)

// keyEncoding is base32 in lower case: case-insensitive systems and humans
// reading keys aloud cannot confuse its characters, and lower case reads
// better than the RFC 4648 upper-case alphabet.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrHashFormat is wrapped by every ParseHash error.
var ErrHashFormat = errors.New(`apikey: a stored key must be its hash, "sha256:" followed by 64 lower-case hex digits`)

// Generate returns a new key, to hand to its consumer once, and the hash to
// store in its place.
func Generate() (key, hash string, err error) {
	var b [keyBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("apikey: reading random bytes: %w", err)
	}
	key = Prefix + keyEncoding.EncodeToString(b[:])
	return key, HashOf(key), nil
}

// HashOf returns the stored form of key.
func HashOf(key string) string { return FormatHash(sha256.Sum256([]byte(key))) }

// FormatHash returns the stored form of a key's SHA-256 hash.
func FormatHash(h [sha256.Size]byte) string { return HashPrefix + hex.EncodeToString(h[:]) }

// IDOf returns the public ID of the key whose hash is h: the first 8 hex
// digits of the hash, enough to tell a consumer's keys apart in logs.
func IDOf(h [sha256.Size]byte) string { return hex.EncodeToString(h[:4]) }

// ParseHash parses the stored form of a key. Its errors explain what is
// wrong without quoting s, which may be a key in clear.
func ParseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	digits, ok := strings.CutPrefix(s, HashPrefix)
	switch {
	case s == "":
		return h, hashErr("the value is empty")
	case strings.HasPrefix(s, Prefix):
		return h, hashErr("the value is an API key in clear; store its hash instead, as printed by `meshctl keys hash`")
	case !ok:
		return h, hashErr(`it does not start with "sha256:"`)
	case len(digits) != hexLen:
		return h, hashErr(fmt.Sprintf("it has %d characters after the prefix, not 64", len(digits)))
	}
	if i, what := badDigit(digits); i >= 0 {
		return h, hashErr(fmt.Sprintf("%s at offset %d", what, len(HashPrefix)+i))
	}
	hex.Decode(h[:], []byte(digits)) // cannot fail: badDigit checked every digit
	return h, nil
}

// badDigit returns the index of the first character of s that is not a
// lower-case hex digit, and what it is instead, or -1. Only lower case is
// accepted so that each hash has one spelling, which diffs and grep rely on.
func badDigit(s string) (int, string) {
	for i := range len(s) {
		switch c := s[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			return i, "an upper-case hex digit"
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return i, "white space"
		default:
			return i, "a character that is not a hex digit"
		}
	}
	return -1, ""
}

func hashErr(reason string) error { return fmt.Errorf("%w: %s", ErrHashFormat, reason) }
