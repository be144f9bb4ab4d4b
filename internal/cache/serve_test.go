package cache

import (
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/httpcache"
)

// serve gives the answer copies of the entry's values, in one shared
// array: an Add to one field of the answer changes neither the entry nor
// the answer's other fields.
func TestServeCopiesValues(t *testing.T) {
	s := &stage{}
	e := &cachestore.Entry{Status: 200, Key: "r\x00GET\x00a/x", Body: []byte("hello"),
		Header: http.Header{"Content-Type": {"text/plain"}, "Vary": {"A", "B"}, "Content-Length": {"5"},
			"Age": {"7"}, "Cache-Status": {"upstream; hit"}}}
	r, _ := http.NewRequest(http.MethodGet, "http://a/x", nil)
	w := &benchWriter{h: http.Header{"Cache-Status": {"outer; fwd=miss"}}}
	s.serve(w, r, e, 3e9, httpcache.CacheStatus{Hit: true})
	h := w.h
	h.Add("Vary", "C")
	h.Add("Content-Type", "x")
	want := map[string][]string{"Content-Type": {"text/plain", "x"}, "Vary": {"A", "B", "C"}, "Content-Length": {"5"},
		"Age": {"3"}, "Cache-Status": {"outer; fwd=miss", "meshgate; hit"}}
	for k, v := range want {
		if !equal(h[k], v) {
			t.Errorf("%s = %q, want %q", k, h[k], v)
		}
	}
	if len(h) != len(want) || w.status != 200 || w.n != 5 {
		t.Errorf("answer %d, %d bytes, header %v", w.status, w.n, h)
	}
	if !equal(e.Header["Vary"], []string{"A", "B"}) || !equal(e.Header["Content-Type"], []string{"text/plain"}) {
		t.Errorf("entry changed: %v", e.Header)
	}

	// A stored HEAD keeps the upstream's Content-Length; a wrong stored
	// length is replaced by the body's.
	head := &cachestore.Entry{Status: 200, Key: "r\x00HEAD\x00a/x", Header: http.Header{"Content-Length": {"1024"}}}
	w = &benchWriter{h: http.Header{}}
	r.Method = http.MethodHead
	s.serve(w, r, head, 0, httpcache.CacheStatus{Hit: true})
	if got := w.h["Content-Length"]; !equal(got, []string{"1024"}) {
		t.Errorf("HEAD entry: Content-Length %q", got)
	}
	for _, cl := range []string{"05", "+5", "6", ""} {
		e.Header["Content-Length"] = []string{cl}
		if got := contentLength(e); got != "5" {
			t.Errorf("stored Content-Length %q: %q, want 5", cl, got)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
