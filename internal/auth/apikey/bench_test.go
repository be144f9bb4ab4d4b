package apikey

import (
	"testing"
)

// BenchmarkLookup looks up a valid key among 10,000: the per-request cost
// of API-key authentication (one SHA-256 of 56 bytes and a map access).
func BenchmarkLookup(b *testing.B) {
	s, keys := newTestStore(b, 10_000)
	key := keys[4242]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := s.Lookup(key); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkLookupUnknown(b *testing.B) {
	s, _ := newTestStore(b, 10_000)
	key, _, _ := Generate()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := s.Lookup(key); ok {
			b.Fatal("found")
		}
	}
}

func BenchmarkExtractLookup(b *testing.B) {
	s, keys := newTestStore(b, 10_000)
	x := Extractor{Header: "Authorization", Scheme: "ApiKey"}
	r := request("/", "Authorization", "ApiKey "+keys[7])
	b.ReportAllocs()
	for b.Loop() {
		k, found := x.Extract(r)
		if _, _, ok := s.Lookup(k); !found || !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	x := Extractor{Header: "Authorization", Scheme: "ApiKey"}
	r := request("/", "Authorization", "ApiKey mgk_2mtu7kqcndyvrlxh6sgsxvjb4fwq3pk5ryzrmenyqmxq5n6tu6ya")
	b.ReportAllocs()
	for b.Loop() {
		if _, found := x.Extract(r); !found {
			b.Fatal("not found")
		}
	}
}
