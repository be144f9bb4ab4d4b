package cache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/httpcache"
)

// serve answers r from the stored response e of the given age: a 304 when
// r's conditions match it, else e itself (without a body for HEAD).
func (s *stage) serve(w http.ResponseWriter, r *http.Request, e *cachestore.Entry, age time.Duration, cs httpcache.CacheStatus) {
	h := w.Header()
	if httpcache.NotModified(r.Header, e.Header) {
		for k, v := range httpcache.NotModifiedHeaders(e.Header) {
			h[k] = v
		}
		setAge(h, age)
		h.Add("Cache-Status", cs.String(Name))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	for k, v := range e.Header {
		if k != "Cache-Status" {
			// A copy: the entry is shared and immutable, and a stage
			// outside may Add to a field.
			h[k] = slices.Clone(v)
		}
	}
	if !isHEADEntry(e) {
		h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	}
	setAge(h, age)
	h.Add("Cache-Status", cs.String(Name))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.Body)
	}
}

func setAge(h http.Header, age time.Duration) {
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
}

// isHEADEntry reports whether e is a stored HEAD response, which has no
// body to measure: its Content-Length is the GET's, as the upstream said.
// The method is the key's second field (stage.key).
func isHEADEntry(e *cachestore.Entry) bool {
	_, rest, _ := strings.Cut(e.Key, "\x00")
	method, _, _ := strings.Cut(rest, "\x00")
	return method == http.MethodHead
}
