package ratelimit

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz seed corpora from fuzzSeeds")

// fuzzSeeds are valid payloads of every shape the package sends, plus
// near-misses of the decoder's checks. They are committed under
// testdata/fuzz (go test -run TestFuzzSeeds -args -update-fuzz-seeds rewrites
// them after a wire change) so that plain go test replays them.
func fuzzSeeds(t testing.TB) map[string][]byte {
	w := win(perMinute, t0)
	seeds := map[string][]byte{
		"one-count":     countsMsg("a", perMinute, "consumer-42", map[int64]int64{w: 7}),
		"two-windows":   countsMsg("a", perMinute, "k", map[int64]int64{w - 1: 900, w: 12}),
		"self":          countsMsg("self", perMinute, "k", map[int64]int64{w: 3}),
		"next-window":   countsMsg("a", perMinute, "k", map[int64]int64{w + 1: 3}),
		"expired":       countsMsg("a", perMinute, "k", map[int64]int64{w - 2: 3}),
		"other-window":  countsMsg("a", PolicyConfig{Name: "api", Window: 30 * time.Second}, "k", map[int64]int64{2 * w: 1}),
		"overflow-key":  countsMsg("a", perMinute, OverflowKey, map[int64]int64{w: 1}),
		"empty-key":     countsMsg("a", perMinute, "", map[int64]int64{w: 1}),
		"short-window":  countsMsg("a", tenSec, "ip:10.0.0.1", map[int64]int64{win(tenSec, t0): 99}),
		"bad-version":   {2, 0, 0},
		"node-index":    {1, 1, 1, 'a', 1, 3, 'a', 'p', 'i', 0xe0, 0xd4, 0x03, 5, 1, 0, 1, 'k', 1, 1 << 2, 3},
		"shared-prefix": {1, 1, 1, 'a', 1, 3, 'a', 'p', 'i', 0xe0, 0xd4, 0x03, 5, 1, 2, 1, 'k', 1, 0, 3},
	}
	// A Flush of many keys in two policies, and a three-node state.
	s := newSingle(t, Options{Node: "self"}, perMinute, tenSec)
	for i := range 60 {
		s.l.Policy("api").AllowN(fmt.Sprintf("tenant-%d/consumer-%d", i%3, i), int64(i%4+1))
		s.l.Policy("s").Allow(fmt.Sprintf("ip:10.0.%d.%d", i/16, i))
	}
	s.l.Flush()
	seeds["flush"] = s.sent[0].msg
	mustMerge(t, s.l, countsMsg("b", perMinute, "tenant-0/consumer-0", map[int64]int64{w: 5}))
	mustMerge(t, s.l, countsMsg("c", perMinute, "tenant-0/consumer-0", map[int64]int64{w - 1: 5, w: 9}))
	seeds["state"] = s.l.LocalState()
	// The claims extension: a node with peers in a burst claims and
	// denies, so its flush and state carry it; the golden; and near-misses
	// of its checks (an extension before any group, a tag that is not its
	// record's, a record count that is neither 0 nor twice the key's).
	c := newSingle(t, Options{Node: "self"}, perMinute, tenSec)
	c.setPeers(2)
	for i := range 300 {
		c.l.Policy("api").Allow(fmt.Sprintf("tenant-%d/consumer-%d", i%3, i%20))
		c.l.Policy("s").Allow("ip:10.0.0.1")
	}
	c.sent = nil
	c.l.Flush()
	seeds["claims-flush"] = c.sent[0].msg
	mustMerge(t, c.l, s.sent[0].msg)
	seeds["claims-state"] = c.l.LocalState()
	golden := goldenHex(t, "claims")
	seeds["claims"] = golden
	orphan := append([]byte{1, 1, 1, 'a', 1, byte(len(claimsGroup))}, claimsGroup...)
	seeds["claims-orphan"] = append(orphan, 0xe0, 0xd4, 0x03, 5, 0) // 60000 ms, base 5, no keys
	seeds["claims-tag"] = replaceHex(t, golden, "0000040003", "0000040403")
	seeds["claims-records"] = replaceHex(t, golden, "0000040003000005000"+"5fa01", "0000020003"+"0000")
	return seeds
}

// goldenHex is the golden payload of that name.
func goldenHex(t testing.TB, name string) []byte {
	for _, g := range goldenPayloads {
		if g.name == name {
			b, err := hex.DecodeString(g.hex)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no golden payload %q", name)
	return nil
}

// replaceHex replaces the one occurrence of hex old in b by new.
func replaceHex(t testing.TB, b []byte, old, new string) []byte {
	h := hex.EncodeToString(b)
	if strings.Count(h, old) != 1 {
		t.Fatalf("%s occurs %d times", old, strings.Count(h, old))
	}
	out, _ := hex.DecodeString(strings.Replace(h, old, new, 1))
	return out
}

// fuzzTarget is a fresh node knowing the seeds' policies.
func fuzzTarget(t *testing.T) *single { return newSingle(t, Options{Node: "self"}, perMinute, tenSec) }

// checkAccepted holds for any payload the node accepted: applying it again
// is a no-op (merging is idempotent), every key still decides without
// panicking, and the node's own state round-trips through MergeState.
func checkAccepted(t *testing.T, s *single, again func() (bool, error)) {
	before := s.l.List()
	relay, err := again()
	if err != nil || relay {
		t.Fatalf("second apply: relay %v, err %v", relay, err)
	}
	if after := s.l.List(); !reflect.DeepEqual(before, after) {
		t.Fatalf("second apply changed state:\n%+v\n%+v", before, after)
	}
	for _, k := range before {
		s.l.Policy(k.Policy).Decide(k.Key, 1)
	}
	rx := newSingle(t, Options{Node: "rx"}, perMinute, tenSec)
	if err := rx.l.MergeState(s.l.LocalState()); err != nil {
		t.Fatalf("own state rejected: %v", err)
	}
}

func FuzzMerge(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := fuzzTarget(t)
		relay, err := s.l.Merge(msg)
		if err != nil {
			if relay || len(s.l.List()) != 0 {
				t.Fatalf("rejected message (%v) changed state or asked for a relay", err)
			}
			return
		}
		checkAccepted(t, s, func() (bool, error) { return s.l.Merge(msg) })
	})
}

func FuzzMergeState(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, state []byte) {
		s := fuzzTarget(t)
		if err := s.l.MergeState(state); err != nil {
			if len(s.l.List()) != 0 {
				t.Fatalf("rejected state (%v) changed state", err)
			}
			return
		}
		checkAccepted(t, s, func() (bool, error) { return false, s.l.MergeState(state) })
	})
}

// TestFuzzSeeds checks the committed corpora exist (and rewrites them with
// -update-fuzz-seeds).
func TestFuzzSeeds(t *testing.T) {
	for _, fuzz := range []string{"FuzzMerge", "FuzzMergeState"} {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, seed := range fuzzSeeds(t) {
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, err := os.ReadDir(dir)
		if err != nil || len(files) < 10 {
			t.Fatalf("%s: %d seed files (%v); run go test -run TestFuzzSeeds -args -update-fuzz-seeds", dir, len(files), err)
		}
		for _, fi := range files {
			b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
			if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\n[]byte(") {
				t.Errorf("%s/%s: not a go test fuzz v1 []byte file", dir, fi.Name())
			}
		}
	}
}
