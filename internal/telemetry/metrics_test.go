package telemetry

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// Every latency bucket, +Inf included, takes exemplars of sampled traces,
// and a request is counted in its status class whether it took one or
// not.
func TestObserveSpanEveryBucket(t *testing.T) {
	if len(RouteStats{}.exemplarAt) != len(durationBuckets)+1 {
		t.Fatalf("%d exemplar slots for %d buckets and +Inf", len(RouteStats{}.exemplarAt), len(durationBuckets))
	}
	tr, m := newTestTracer(t, config.Tracing{}, &memExporter{}, nil)
	rs := m.Route("r")
	now := time.Now()
	seconds := append(durationBuckets[:], 100) // each bound, and beyond the last
	for i, sec := range seconds {
		s := tr.StartServer(http.Header{}, now, false)
		rs.ObserveSpan(200, sec, now, s) // takes an exemplar
		rs.ObserveSpan(599, sec, now, s) // too soon for another
		rs.ObserveSpan(999, sec, now.Add(2*exemplarEvery), s)
		s.End(now)
		if b := bucketOf(sec); b != i {
			t.Errorf("%v s in bucket %d, want %d", sec, b, i)
		}
	}
	text := scrapeText(t, m)
	for _, want := range []string{
		`meshgate_requests_total{code="2xx",route="r"} 15`,
		`meshgate_requests_total{code="5xx",route="r"} 15`,
		`meshgate_requests_total{code="other",route="r"} 15`,
		`meshgate_request_duration_seconds_count{route="r"} 45`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
	for i := range rs.exemplarAt {
		if rs.exemplarAt[i].Load() != now.Add(2*exemplarEvery).UnixNano() {
			t.Errorf("bucket %d took no second exemplar", i)
		}
	}
}
