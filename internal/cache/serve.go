package cache

import (
	"net/http"
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
	if conditional(r.Header) && httpcache.NotModified(r.Header, headerOf(e)) {
		for k, v := range httpcache.NotModifiedHeaders(headerOf(e)) {
			h[k] = v
		}
		setAge(h, age)
		h.Add("Cache-Status", cs.String(Name))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// The entry is shared and immutable, and a stage outside may Add to a
	// field: the answer gets copies of its values. All of them, and the
	// values set below, share one array, each field's slice capped at its
	// own end so that an Add reallocates rather than overwrite the next.
	head := isHEADEntry(e)
	n := 3 // Content-Length, Age, Cache-Status
	if e.Header == nil {
		n += e.Packed.Values()
	}
	for _, v := range e.Header {
		n += len(v)
	}
	vals := make([]string, 0, n)
	field := func(v ...string) []string {
		i := len(vals)
		vals = append(vals, v...)
		return vals[i:len(vals):len(vals)]
	}
	// Cache-Status is the stored response's upstream's, about another
	// request; Age is set below, and so is Content-Length but on a stored
	// HEAD response.
	skip := func(k string) bool {
		return k == "Cache-Status" || k == "Age" || (k == "Content-Length" && !head)
	}
	if e.Header == nil {
		vals = e.Packed.AppendFields(vals, func(k string, v []string) {
			if !skip(k) {
				h[k] = v
			}
		})
	}
	for k, v := range e.Header {
		if !skip(k) {
			h[k] = field(v...)
		}
	}
	if !head {
		h["Content-Length"] = field(contentLength(e))
	}
	h["Age"] = field(strconv.FormatInt(int64(age/time.Second), 10))
	status := cs.String(Name)
	if prev := h["Cache-Status"]; len(prev) > 0 {
		h["Cache-Status"] = append(prev, status)
	} else {
		h["Cache-Status"] = field(status)
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.Body)
	}
}

// contentLength is len(e.Body) in decimal: the stored Content-Length when
// it says so (as it does when the upstream sent one), without formatting
// it again.
func contentLength(e *cachestore.Entry) string {
	v, n := "", 0
	if e.Header != nil {
		if vs := e.Header["Content-Length"]; len(vs) > 0 {
			v, n = vs[0], len(vs)
		}
	} else {
		v, n = e.Packed.First("Content-Length")
	}
	if n == 1 && canonicalDecimal(v) {
		if n, err := strconv.Atoi(v); err == nil && n == len(e.Body) {
			return v
		}
	}
	return strconv.Itoa(len(e.Body))
}

// headerOf is e's header: its Header, or its Packed header unpacked (a new
// map, which the caller may change).
func headerOf(e *cachestore.Entry) http.Header {
	if e.Header != nil {
		return e.Header
	}
	return e.Packed.Header()
}

// conditional reports whether a request header h has the conditions
// httpcache.NotModified evaluates; without them it is false.
func conditional(h http.Header) bool {
	return len(h["If-None-Match"]) > 0 || len(h["If-Modified-Since"]) > 0
}

// canonicalDecimal reports whether s is what strconv.Itoa makes of a
// non-negative int: digits, without a sign or a leading zero.
func canonicalDecimal(s string) bool {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
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
