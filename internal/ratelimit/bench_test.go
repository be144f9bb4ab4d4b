package ratelimit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// benchPolicy is a policy on the real clock whose limit is never reached,
// so every decision takes the admitting path (a CAS), the costlier one.
func benchPolicy(b *testing.B, o Options, limit int64) (*Limiter, *Policy) {
	b.Helper()
	o.Node = "bench"
	l, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.SetPolicies([]PolicyConfig{{Name: "api", Limit: limit, Window: time.Minute}}); err != nil {
		b.Fatal(err)
	}
	return l, l.Policy("api")
}

func BenchmarkAllow(b *testing.B) {
	_, p := benchPolicy(b, Options{}, maxCount)
	p.Allow("consumer-42")
	b.ReportAllocs()
	for b.Loop() {
		if !p.Allow("consumer-42") {
			b.Fatal("denied")
		}
	}
}

func BenchmarkAllowDenied(b *testing.B) {
	_, p := benchPolicy(b, Options{}, 1)
	p.Allow("consumer-42")
	b.ReportAllocs()
	for b.Loop() {
		if p.Allow("consumer-42") {
			b.Fatal("admitted")
		}
	}
}

// BenchmarkAllowClustered decides with peers' counts and extrapolation on:
// the most work Allow does.
func BenchmarkAllowClustered(b *testing.B) {
	l, p := benchPolicy(b, Options{Peers: func() int { return 9 }, Extrapolate: time.Second}, maxCount)
	w := time.Now().UnixNano() / int64(time.Minute)
	for i := range 9 {
		mustMerge(b, l, countsMsg(fmt.Sprintf("n%d", i), perMinute, "consumer-42", map[int64]int64{w: 10}))
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Allow("consumer-42")
	}
}

// BenchmarkAllowParallel: requests for 1024 keys from all CPUs.
func BenchmarkAllowParallel(b *testing.B) {
	_, p := benchPolicy(b, Options{}, maxCount)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("consumer-%d", i)
		p.Allow(keys[i])
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			p.Allow(keys[i&1023])
			i++
		}
	})
}

// BenchmarkAllowParallelOneKey: every CPU on the same key, the worst case
// for contention on its counter.
func BenchmarkAllowParallelOneKey(b *testing.B) {
	_, p := benchPolicy(b, Options{}, maxCount)
	p.Allow("hot")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Allow("hot")
		}
	})
}

// BenchmarkMerge: one full message (about 45 keys) from a peer.
func BenchmarkMerge(b *testing.B) {
	src := newSingle(b, Options{Node: "src"}, perMinute)
	for _, k := range manyKeys(45) {
		src.l.Policy("api").Allow(k)
	}
	src.l.Flush()
	msg := src.sent[0].msg
	dst := newSingle(b, Options{}, perMinute)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dst.l.Merge(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlush: 10,000 live keys of which 1% changed since the last flush.
func BenchmarkFlush(b *testing.B) {
	s := newSingle(b, Options{}, perMinute)
	p := s.l.Policy("api")
	keys := manyKeys(10000)
	for _, k := range keys {
		p.Allow(k)
	}
	s.l.Flush()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for range 100 {
			p.Allow(keys[i%len(keys)])
			i += 97
		}
		s.sent = s.sent[:0]
		s.l.Flush()
	}
}
