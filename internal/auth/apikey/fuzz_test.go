package apikey

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz seed corpora from the seed functions")

// fuzzKey is a fixed key, so that the committed seeds stay valid.
const fuzzKey = "mgk_2mtu7kqcndyvrlxh6sgsxvjb4fwq3pk5ryzrmenyqmxq5n6tu6ya"

// hashSeeds are the stored form and near misses of each of its checks.
func hashSeeds() map[string]string {
	valid := HashOf(fuzzKey)
	digits := valid[len(HashPrefix):]
	return map[string]string{
		"valid":      valid,
		"zero":       HashPrefix + strings.Repeat("0", 64),
		"empty":      "",
		"prefix":     HashPrefix,
		"clear-key":  fuzzKey,
		"no-prefix":  digits,
		"upper":      HashPrefix + strings.ToUpper(digits),
		"short":      valid[:len(valid)-1],
		"long":       valid + "f",
		"newline":    valid + "\n",
		"not-hex":    valid[:len(valid)-1] + "g",
		"multibyte":  valid[:len(valid)-2] + "é",
		"sha512":     "sha512:" + digits,
		"key-prefix": Prefix,
	}
}

// keySeeds are the stored key and near misses of it.
func keySeeds() map[string]string {
	return map[string]string{
		"stored":     fuzzKey,
		"other":      "mgk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"one-bit":    fuzzKey[:10] + "n" + fuzzKey[11:],
		"truncated":  fuzzKey[:len(fuzzKey)-1],
		"extended":   fuzzKey + "a",
		"upper":      strings.ToUpper(fuzzKey),
		"empty":      "",
		"prefix":     Prefix,
		"at-max":     strings.Repeat("k", MaxKeyLen),
		"over-max":   strings.Repeat("k", MaxKeyLen+1),
		"spaces":     " " + fuzzKey + " ",
		"hash-form":  HashOf(fuzzKey),
		"nul":        fuzzKey + "\x00",
		"binary":     "\xff\xfe\x00mgk_",
		"stored-max": fuzzKey + strings.Repeat("a", MaxKeyLen-len(fuzzKey)),
	}
}

func FuzzParseHash(f *testing.F) {
	for _, s := range hashSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err != nil {
			if h != [sha256.Size]byte{} {
				t.Fatalf("error %v with a non-zero hash", err)
			}
			return
		}
		// Accepted values have exactly one spelling, never a key's.
		if FormatHash(h) != s || strings.HasPrefix(s, Prefix) {
			t.Fatalf("accepted %q, which formats back as %q", s, FormatHash(h))
		}
	})
}

func FuzzLookup(f *testing.F) {
	for _, s := range keySeeds() {
		f.Add(s)
	}
	atMax := keySeeds()["stored-max"]
	entries := []Entry{{Consumer: "fuzz"}, {Consumer: "max"}}
	entries[0].Hash, _ = ParseHash(HashOf(fuzzKey))
	entries[1].Hash, _ = ParseHash(HashOf(atMax))
	s, err := NewStore(entries)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		consumer, id, ok := s.Lookup(key)
		want := map[string]string{fuzzKey: "fuzz", atMax: "max"}[key]
		if ok != (want != "") || consumer != want || (ok != (id != "")) {
			t.Fatalf("Lookup(%q) = %q, %q, %v; want consumer %q", key, consumer, id, ok, want)
		}
	})
}

// TestFuzzSeeds checks the committed corpora exist (and rewrites them with
// go test -run TestFuzzSeeds -args -update-fuzz-seeds).
func TestFuzzSeeds(t *testing.T) {
	for fuzz, seeds := range map[string]map[string]string{"FuzzParseHash": hashSeeds(), "FuzzLookup": keySeeds()} {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if *updateSeeds {
			writeSeeds(t, dir, seeds)
		}
		files, err := os.ReadDir(dir)
		if err != nil || len(files) < len(seeds) {
			t.Fatalf("%s: %d seed files (%v), want %d; run go test -run TestFuzzSeeds -args -update-fuzz-seeds", dir, len(files), err, len(seeds))
		}
		for _, fi := range files {
			b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
			if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\nstring(") {
				t.Errorf("%s/%s: not a go test fuzz v1 string file", dir, fi.Name())
			}
		}
	}
}

func writeSeeds(t *testing.T, dir string, seeds map[string]string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, seed := range seeds {
		body := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", seed)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
