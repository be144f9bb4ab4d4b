package apikey

import (
	"strings"
	"sync"
	"testing"
)

// newTestStore returns a store of n generated keys, consumers c0…c(n-1).
func newTestStore(t testing.TB, n int) (*Store, []string) {
	t.Helper()
	keys := make([]string, n)
	entries := make([]Entry, n)
	for i := range n {
		key, hash, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseHash(hash)
		if err != nil {
			t.Fatal(err)
		}
		keys[i], entries[i] = key, Entry{Hash: h, Consumer: "c" + string(rune('0'+i%10))}
	}
	s, err := NewStore(entries)
	if err != nil {
		t.Fatal(err)
	}
	return s, keys
}

func TestLookup(t *testing.T) {
	s, keys := newTestStore(t, 3)
	for i, key := range keys {
		consumer, id, ok := s.Lookup(key)
		h, _ := ParseHash(HashOf(key))
		if !ok || consumer != "c"+string(rune('0'+i)) || id != IDOf(h) {
			t.Fatalf("Lookup(key %d) = %q, %q, %v", i, consumer, id, ok)
		}
	}
}

func TestLookupRefuses(t *testing.T) {
	s, keys := newTestStore(t, 1)
	key := keys[0]
	for i := range len(key) {
		b := []byte(key)
		b[i] ^= 1
		if _, _, ok := s.Lookup(string(b)); ok {
			t.Fatalf("key with byte %d changed accepted", i)
		}
	}
	long := key + strings.Repeat("x", MaxKeyLen)
	for _, k := range []string{"", key[:len(key)-1], key + "a", " " + key, strings.ToUpper(key), long} {
		if _, _, ok := s.Lookup(k); ok {
			t.Fatalf("Lookup(%q) accepted", k)
		}
	}
	var nilStore *Store
	if _, _, ok := nilStore.Lookup(key); ok || nilStore.Len() != 0 {
		t.Fatal("nil store accepted a key")
	}
}

// A stored hash of a key longer than MaxKeyLen can never match: the length
// check comes before hashing.
func TestLookupLongKeyNotHashed(t *testing.T) {
	long := strings.Repeat("k", MaxKeyLen+1)
	h, _ := ParseHash(HashOf(long))
	s, err := NewStore([]Entry{{Hash: h, Consumer: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Lookup(long); ok {
		t.Fatal("key over MaxKeyLen accepted")
	}
	atMax := long[:MaxKeyLen]
	h, _ = ParseHash(HashOf(atMax))
	s, _ = NewStore([]Entry{{Hash: h, Consumer: "c"}})
	if _, _, ok := s.Lookup(atMax); !ok {
		t.Fatal("key of MaxKeyLen refused")
	}
}

func TestNewStoreRefuses(t *testing.T) {
	h1, _ := ParseHash(HashOf("one"))
	h2, _ := ParseHash(HashOf("two"))
	for name, tc := range map[string]struct {
		entries []Entry
		want    string
	}{
		"duplicate":   {[]Entry{{Hash: h1, Consumer: "a"}, {Hash: h2, Consumer: "b"}, {Hash: h1, Consumer: "c"}}, `entry 2 (id ` + IDOf(h1) + `): same hash as key ` + IDOf(h1) + ` of consumer "a"`},
		"no consumer": {[]Entry{{Hash: h1}}, "no consumer"},
		"no hash":     {[]Entry{{Consumer: "a"}}, "no hash"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewStore(tc.entries); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewStoreKeepsGivenID(t *testing.T) {
	h, _ := ParseHash(HashOf("k"))
	s, err := NewStore([]Entry{{Hash: h, Consumer: "a", ID: "ops-2025"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, id, ok := s.Lookup("k"); !ok || id != "ops-2025" || s.Len() != 1 {
		t.Fatalf("id %q ok %v", id, ok)
	}
}

func TestLookupConcurrent(t *testing.T) {
	s, keys := newTestStore(t, 10)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if _, _, ok := s.Lookup(keys[(g+i)%len(keys)]); !ok {
					t.Error("lookup failed")
					return
				}
			}
		})
	}
	wg.Wait()
}
