package rewrite

import (
	"net/http"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
)

type headerOps struct {
	remove []string
	set    []headerKV
	add    []headerKV
}

type headerKV struct{ key, value string }

func compileHeaderOps(c config.HeaderOps) headerOps {
	var o headerOps
	for _, k := range c.Remove {
		o.remove = append(o.remove, http.CanonicalHeaderKey(k))
	}
	o.set = sortedKV(c.Set)
	o.add = sortedKV(c.Add)
	return o
}

func sortedKV(m map[string]string) []headerKV {
	var kv []headerKV
	for k, v := range m {
		kv = append(kv, headerKV{http.CanonicalHeaderKey(k), v})
	}
	slices.SortFunc(kv, func(a, b headerKV) int { return strings.Compare(a.key, b.key) })
	return kv
}

func (o *headerOps) apply(h http.Header) {
	if h == nil {
		return
	}
	for _, k := range o.remove {
		delete(h, k)
	}
	for _, kv := range o.set {
		h[kv.key] = []string{kv.value}
	}
	for _, kv := range o.add {
		h[kv.key] = append(h[kv.key], kv.value)
	}
}

// Request applies the request header operations to h, the headers sent
// upstream: remove, then set (replace), then add (append).
func (r *Rules) Request(h http.Header) {
	if r != nil {
		r.req.apply(h)
	}
}

// Response applies the response header operations to h, the headers sent
// to the client: remove, then set (replace), then add (append).
func (r *Rules) Response(h http.Header) {
	if r != nil {
		r.resp.apply(h)
	}
}
