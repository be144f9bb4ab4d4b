package breaker

import (
	"reflect"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// The seed corpora are committed under testdata/fuzz/<FuzzName>/ and are
// replayed by plain go test; f.Add covers the shapes built here.

func fuzzRegistry(t *testing.T) *Registry {
	r, err := New(Options{Node: "me", Clock: clock.NewFake(t0), Send: func(string, []byte) {}})
	if err != nil {
		t.Fatal(err)
	}
	set := testSettings
	set.Quorum = 1
	fail(t, r.Breaker(ep, set), 1)
	return r
}

func FuzzMerge(f *testing.F) {
	f.Add(msgFrom("p", stateOpen, 1, 10*time.Second))
	f.Add(msgFrom("p", stateReset, 9, time.Minute))
	f.Add(msgFrom("me", stateOpen, 1<<62, time.Second))
	f.Fuzz(func(t *testing.T, msg []byte) {
		r := fuzzRegistry(t)
		_, err := r.Merge(msg)
		rep, derr := decodeMessage(msg)
		if (err == nil) != (derr == nil) {
			t.Fatalf("Merge %v, decode %v", err, derr)
		}
		if err != nil {
			return
		}
		// What is accepted re-encodes to the same report.
		again, err := decodeMessage(encodeMessage(rep))
		if err != nil || !reflect.DeepEqual(again, rep) {
			t.Fatalf("round trip: %+v → %+v, %v", rep, again, err)
		}
		r.List()
		if _, err := decodeState(r.LocalState()); err != nil {
			t.Fatalf("own state does not decode: %v", err)
		}
	})
}

func FuzzMergeState(f *testing.F) {
	f.Add(encodeState(nil))
	f.Add(encodeState([]report{
		{state: stateOpen, gen: 3, ttl: 5 * time.Second, reporter: "p", endpoint: ep},
		{state: stateClosed, gen: 4, ttl: time.Minute, reporter: "q", endpoint: "[::1]:443"},
	}))
	f.Fuzz(func(t *testing.T, state []byte) {
		r := fuzzRegistry(t)
		err := r.MergeState(state)
		rs, derr := decodeState(state)
		if (err == nil) != (derr == nil) {
			t.Fatalf("MergeState %v, decode %v", err, derr)
		}
		if err != nil {
			return
		}
		again, err := decodeState(encodeState(rs))
		if err != nil || len(again) != len(rs) || (len(rs) > 0 && !reflect.DeepEqual(again, rs)) {
			t.Fatalf("round trip: %+v → %+v, %v", rs, again, err)
		}
		if _, err := decodeState(r.LocalState()); err != nil {
			t.Fatalf("own state does not decode: %v", err)
		}
	})
}
