package cache

import (
	"net/http"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/httpcache"
)

// A stored response keeps its header packed, without an upstream's
// Cache-Status, with a Date, and with the facts of its freshness; the tee
// a miss used (pooled) carries nothing over to the next one.
func TestStoredEntryIsPacked(t *testing.T) {
	clk := newClock()
	date := clk.Now().Add(-5 * time.Second).Format(http.TimeFormat)
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, call int) {
		switch r.URL.Path {
		case "/a": // no Date, an upstream's Cache-Status
			reply(w, 200, "aaa", "Cache-Control", "max-age=60", "Cache-Status", "up; hit", "X-A", "1", "X-A", "2")
		case "/b": // a Date: stored as it came
			reply(w, 200, "bb", "Cache-Control", "max-age=30, stale-if-error=9", "Date", date, "ETag", `"b"`)
		}
	}}
	h, st := newTestStage(t, testCache(), o, clk)
	for _, path := range []string{"/a", "/b"} {
		if rec := send(h, "GET", path, "", nil); rec.Code != 200 {
			t.Fatalf("%s: %d", path, rec.Code)
		}
	}
	a, ok := st.Lookup("r\x00GET\x00api.example/a", nil)
	if !ok {
		t.Fatal("/a not stored")
	}
	b, ok := st.Lookup("r\x00GET\x00api.example/b", nil)
	if !ok {
		t.Fatal("/b not stored")
	}
	for _, e := range []struct {
		path  string
		e     interface{ Get(string) string }
		want  map[string]string
		facts httpcache.Facts
	}{
		{"/a", a.Packed, map[string]string{"X-A": "1", "Date": clk.Now().Format(http.TimeFormat), "Cache-Status": "", "Etag": "", "Content-Length": "3"}, a.Facts},
		{"/b", b.Packed, map[string]string{"X-A": "", "Date": date, "Etag": `"b"`, "Content-Length": "2"}, b.Facts},
	} {
		for k, v := range e.want {
			if got := e.e.Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", e.path, k, got, v)
			}
		}
		if !e.facts.Parsed {
			t.Errorf("%s: facts not kept", e.path)
		}
	}
	if a.Header != nil || b.Header != nil {
		t.Error("stored with an http.Header as well")
	}
	if v := a.Packed.Header()["X-A"]; len(v) != 2 || v[1] != "2" {
		t.Errorf("/a X-A %q", v)
	}
	if a.Facts.Lifetime != time.Minute || a.Facts.HasValidator || b.Facts.Lifetime != 30*time.Second ||
		!b.Facts.HasValidator || b.Facts.InitialAge != 5*time.Second || b.Facts.StaleIfError != 9*time.Second {
		t.Errorf("facts: /a %+v, /b %+v", a.Facts, b.Facts)
	}
	// Served from the packed header: both values, Age from the facts.
	clk.Advance(3 * time.Second)
	rec := send(h, "GET", "/a", "", nil)
	if v := rec.Header()["X-A"]; len(v) != 2 || rec.Header().Get("Age") != "3" || rec.Body.String() != "aaa" {
		t.Errorf("hit: %v %q", rec.Header(), rec.Body.String())
	}
	rec = send(h, "GET", "/b", "", map[string]string{"If-None-Match": `"b"`})
	if rec.Code != http.StatusNotModified || rec.Header().Get("ETag") != `"b"` || rec.Header().Get("Age") != "8" {
		t.Errorf("conditional hit: %d %v", rec.Code, rec.Header())
	}
}
