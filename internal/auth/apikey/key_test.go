package apikey

import (
	"crypto/sha256"
	"errors"
	"regexp"
	"strings"
	"testing"
)

var keyForm = regexp.MustCompile(`^mgk_[a-z2-7]{52}$`)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		key, hash, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !keyForm.MatchString(key) {
			t.Fatalf("key %q: want mgk_ and 52 lower-case base32 characters", key)
		}
		if hash != HashOf(key) {
			t.Fatalf("hash %q, HashOf gives %q", hash, HashOf(key))
		}
		h, err := ParseHash(hash)
		if err != nil || h != sha256.Sum256([]byte(key)) {
			t.Fatalf("ParseHash(%q) = %x, %v", hash, h, err)
		}
		if seen[key] {
			t.Fatal("duplicate key")
		}
		seen[key] = true
	}
}

func TestParseHashRefuses(t *testing.T) {
	valid := HashOf("k")
	key, _, _ := Generate()
	for name, tc := range map[string]struct{ in, want string }{
		"empty":        {"", "empty"},
		"clear key":    {key, "meshctl keys hash"},
		"no prefix":    {valid[len(HashPrefix):], `start with "sha256:"`},
		"other algo":   {"sha512:" + valid[len(HashPrefix):], `start with "sha256:"`},
		"short":        {valid[:len(valid)-1], "63 characters"},
		"long":         {valid + "0", "65 characters"},
		"upper case":   {HashPrefix + strings.ToUpper(valid[len(HashPrefix):]), "upper-case hex digit at offset"},
		"newline":      {valid[:len(valid)-1] + "\n", "white space at offset 70"},
		"not hex":      {valid[:len(valid)-1] + "g", "not a hex digit at offset 70"},
		"prefix case":  {"SHA256:" + valid[len(HashPrefix):], `start with "sha256:"`},
		"only a colon": {HashPrefix, "0 characters"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseHash(tc.in)
			if !errors.Is(err, ErrHashFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrHashFormat mentioning %q", err, tc.want)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), tc.in[len(tc.in)-8:]) {
				t.Fatalf("error %q quotes the refused value", err)
			}
		})
	}
}

func TestIDOf(t *testing.T) {
	h, _ := ParseHash(HashOf("k"))
	if id := IDOf(h); id != HashOf("k")[len(HashPrefix):][:8] {
		t.Fatalf("IDOf = %q", id)
	}
}
