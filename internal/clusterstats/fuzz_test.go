package clusterstats

import (
	"reflect"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// The seed corpora are committed under testdata/fuzz/<FuzzName>/ and are
// replayed by plain go test; f.Add covers the shapes built here.

func fuzzSharer() *Sharer {
	clk := clock.NewFake(t0)
	st := telemetry.NewUpstreamStatsClock(clk)
	st.Observe("u", 200, time.Millisecond)
	return New(Options{Node: "me", Stats: st, Clock: clk, Send: func(string, []byte) {}})
}

func FuzzMerge(f *testing.F) {
	f.Add(encodeMessage(goldenHeader, &goldenRecord))
	f.Add(encodeMessage(goldenHeader, &emptyRecord))
	f.Add(encodeMessage(header{"me", 1, 1}, &goldenRecord))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := fuzzSharer()
		_, err := s.Merge(msg)
		h, r, derr := decodeMessage(msg)
		if (err == nil) != (derr == nil) {
			t.Fatalf("Merge %v, decode %v", err, derr)
		}
		if err != nil {
			return
		}
		// What is accepted re-encodes to the same record (for this
		// release's version: a later one's appended fields are dropped).
		h2, again, err := decodeMessage(encodeMessage(h, &r))
		if err != nil || h2 != h || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %+v → %+v, %v", r, again, err)
		}
		m := Merge(s.Upstream(r.upstream))
		if m.Errors > m.Requests {
			t.Fatalf("merged %+v", m)
		}
		if _, _, err := decodeState(s.LocalState()); err != nil {
			t.Fatalf("own state does not decode: %v", err)
		}
	})
}

func FuzzMergeState(f *testing.F) {
	f.Add(encodeState(goldenHeader, nil))
	f.Add(encodeState(goldenHeader, []record{goldenRecord, emptyRecord}))
	f.Fuzz(func(t *testing.T, state []byte) {
		s := fuzzSharer()
		err := s.MergeState(state)
		h, rs, derr := decodeState(state)
		if (err == nil) != (derr == nil) {
			t.Fatalf("MergeState %v, decode %v", err, derr)
		}
		if err != nil {
			return
		}
		h2, again, err := decodeState(encodeState(h, rs))
		if err != nil || h2 != h || len(again) != len(rs) || len(rs) > 0 && !reflect.DeepEqual(again, rs) {
			t.Fatalf("round trip: %+v → %+v, %v", rs, again, err)
		}
	})
}
