package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/wire"
)

func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("tenant-%02d/consumer-%06d", i%40, i*7919%1000003)
	}
	return keys
}

// TestFlushMessagesBounded: with thousands of keys every message fits
// maxMessage, and the messages together carry every count exactly.
func TestFlushMessagesBounded(t *testing.T) {
	s := newSingle(t, Options{}, perMinute, PolicyConfig{Name: "per-ip", Limit: 10, Window: 10 * time.Second})
	keys := manyKeys(4000)
	for i, k := range keys {
		s.l.Policy("api").AllowN(k, int64(1+i%3))
		if i%2 == 0 {
			s.l.Policy("per-ip").Allow(k)
		}
	}
	s.l.Flush()
	rx := newSingle(t, Options{Node: "rx"}, perMinute, PolicyConfig{Name: "per-ip", Limit: 10, Window: 10 * time.Second})
	total, keyBytes := 0, 0
	for _, m := range s.sent {
		if len(m.msg) > maxMessage {
			t.Fatalf("message %s: %d bytes", m.key, len(m.msg))
		}
		total += len(m.msg)
		mustMerge(t, rx.l, m.msg)
	}
	for _, k := range keys {
		keyBytes += len(k)
	}
	want := s.l.List()
	got := rx.l.List()
	if len(got) != len(want) || len(got) != 6000 {
		t.Fatalf("receiver knows %d keys, sender %d, want 6000", len(got), len(want))
	}
	for i := range got {
		if got[i].Key != want[i].Key || got[i].Cluster != want[i].Local {
			t.Fatalf("key %d: receiver %+v, sender %+v", i, got[i], want[i])
		}
	}
	t.Logf("%d messages, %d bytes for 6000 key counts (%.1f B/key; key names alone average %.1f B)",
		len(s.sent), total, float64(total)/6000, float64(keyBytes)/4000)
	// Nothing changed: the next flush sends nothing.
	n := len(s.sent)
	s.l.Flush()
	if len(s.sent) != n {
		t.Fatalf("unchanged counts sent again: %d messages", len(s.sent)-n)
	}
}

// TestFrontCodingSaves measures the per-message key compression: sorted
// keys (as in LocalState) and hash-sharded keys (as in Flush, where a shard
// holds a random sample of the keys, sorted) against no front coding.
func TestFrontCodingSaves(t *testing.T) {
	keys := manyKeys(2000)
	rec := []wireRecord{{win: 29000000, count: 17}}
	encoded := func(keys []string) int {
		b := newBuilder(1<<30, []string{"node-a"})
		for _, k := range keys {
			b.add("api", 60000, 29000000, k, rec)
		}
		return len(b.finish())
	}
	plain := encoded(nil)
	for _, k := range keys {
		plain += 1 + wire.StringLen(k) + 1 + 1 + 1 // shared=0, key, 1 record
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	// A Flush shard: 1 key in 64, sorted.
	var shard []string
	for i, k := range sorted {
		if i%64 == 0 {
			shard = append(shard, k)
		}
	}
	all, sh := encoded(sorted), encoded(shard)
	perShard := float64(sh-encoded(nil)) / float64(len(shard))
	perPlain := float64(plain-encoded(nil)) / 2000
	t.Logf("per key: no front coding %.1f B, sorted %.1f B (%.0f%% saved), one flush shard %.1f B (%.0f%% saved)",
		perPlain, float64(all-encoded(nil))/2000, 100*(1-float64(all)/float64(plain)),
		perShard, 100*(1-perShard/perPlain))
	if all >= plain/2 {
		t.Errorf("front coding of sorted keys saved under 50%%: %d vs %d", all, plain)
	}
}

// TestSupersedingKeepsEverything models memberlist's queue, in which a
// message replaces any queued one with the same key: after many rounds in
// which different subsets of keys changed, the queue's survivors alone
// must carry every key's final count.
func TestSupersedingKeepsEverything(t *testing.T) {
	s := newSingle(t, Options{}, perMinute)
	queue := map[string][]byte{}
	keys := manyKeys(1500)
	rng := rand.New(rand.NewPCG(3, 4))
	p := s.l.Policy("api")
	for round := range 20 {
		n := 1 + rng.IntN(len(keys)) // the live key count, and so the shards, vary
		if round%5 == 4 {
			n = 3
		}
		for _, k := range keys[:n] {
			if rng.IntN(4) == 0 {
				p.Allow(k)
			}
		}
		s.sent = s.sent[:0]
		s.l.Flush()
		for _, m := range s.sent {
			if !strings.HasPrefix(m.key, sendPrefix) {
				t.Fatalf("send key %q", m.key)
			}
			queue[m.key] = m.msg
		}
	}
	rx := newSingle(t, Options{Node: "rx"}, perMinute)
	for _, msg := range queue {
		mustMerge(t, rx.l, msg)
	}
	want, got := s.l.List(), rx.l.List()
	if len(got) != len(want) {
		t.Fatalf("receiver knows %d keys, sender has %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Key != want[i].Key || got[i].Cluster != want[i].Local {
			t.Fatalf("key %s: receiver %d, sender %d", want[i].Key, got[i].Cluster, want[i].Local)
		}
	}
	t.Logf("%d keys, %d queued messages", len(want), len(queue))
}

// TestLocalStateBounded: past MaxStateBytes, LocalState stops (and counts
// it); different calls cover different keys.
func TestLocalStateBounded(t *testing.T) {
	s := newSingle(t, Options{MaxStateBytes: 4096}, perMinute)
	for _, k := range manyKeys(1000) {
		s.l.Policy("api").Allow(k)
	}
	seen := map[string]bool{}
	for range 20 {
		st := s.l.LocalState()
		if len(st) > 4096 {
			t.Fatalf("state %d bytes", len(st))
		}
		rx := newSingle(t, Options{Node: "rx"}, perMinute)
		if err := rx.l.MergeState(st); err != nil {
			t.Fatal(err)
		}
		for _, k := range rx.l.List() {
			seen[k.Key] = true
		}
	}
	if st := s.l.Stats(); st.StatesTruncated != 20 {
		t.Fatalf("StatesTruncated = %d", st.StatesTruncated)
	}
	if len(seen) < 900 {
		t.Fatalf("20 truncated states covered only %d of 1000 keys", len(seen))
	}
}

// TestRun: Run flushes every interval on the injected clock, and once more
// when its context ends.
func TestRun(t *testing.T) {
	s := newSingle(t, Options{Interval: 100 * time.Millisecond}, perMinute)
	sent := make(chan string, 10)
	s.l.send = func(key string, _ []byte) { sent <- key }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.l.Run(ctx); close(done) }()
	s.clk.BlockUntil(1)
	s.l.Policy("api").Allow("k")
	s.clk.Advance(100 * time.Millisecond)
	<-sent
	s.clk.BlockUntil(1)
	s.l.Policy("api").Allow("k")
	cancel()
	<-done
	select {
	case <-sent:
	default:
		t.Fatal("no final flush")
	}
}
