package apikey

import (
	"net/http"
	"net/url"
	"strings"
)

// Extractor finds the key in a request: in the header Header, after the
// authentication scheme Scheme if one is set (Authorization: ApiKey <key>),
// else in the query parameter Query. Either may be empty, not both.
//
//	Extractor{Header: "X-Api-Key"}
//	Extractor{Header: "Authorization", Scheme: "ApiKey"}
//	Extractor{Header: "X-Api-Key", Query: "api_key"}
type Extractor struct {
	Header string // header name, any case
	Scheme string // optional scheme before the key, matched in any case
	Query  string // query parameter name
}

// Extract returns the first key found: in the header's values in order,
// then in the query parameters in order. Values that are empty, or carry
// another scheme (Authorization: Bearer …), are not keys.
func (x Extractor) Extract(r *http.Request) (key string, found bool) {
	if x.Header != "" {
		for _, v := range r.Header.Values(x.Header) {
			if k, ok := x.fromHeader(v); ok && k != "" {
				return k, true
			}
		}
	}
	if x.Query != "" && r.URL != nil {
		return x.fromQuery(r.URL.RawQuery)
	}
	return "", false
}

// Strip removes every credential Extract could have found, not only the
// one it returned, so that no copy of a key reaches the upstream. Values
// of the header with another scheme stay (they belong to someone else),
// and the other query parameters keep their order and their encoding.
func (x Extractor) Strip(r *http.Request) {
	if x.Header != "" {
		x.stripHeader(r.Header)
	}
	if x.Query != "" && r.URL != nil {
		r.URL.RawQuery = x.stripQuery(r.URL.RawQuery)
	}
}

// fromHeader returns the key in header value v and whether v has the
// extractor's form.
func (x Extractor) fromHeader(v string) (string, bool) {
	if x.Scheme == "" {
		return strings.TrimSpace(v), true
	}
	n := len(x.Scheme)
	if len(v) <= n || v[n] != ' ' || !strings.EqualFold(v[:n], x.Scheme) {
		return "", false
	}
	return strings.TrimSpace(v[n:]), true
}

func (x Extractor) stripHeader(h http.Header) {
	if x.Scheme == "" {
		h.Del(x.Header)
		return
	}
	vs := h.Values(x.Header)
	keep := make([]string, 0, len(vs))
	for _, v := range vs {
		if _, ours := x.fromHeader(v); !ours {
			keep = append(keep, v)
		}
	}
	if len(keep) == 0 {
		h.Del(x.Header)
	} else if len(keep) < len(vs) {
		h[http.CanonicalHeaderKey(x.Header)] = keep
	}
}

// fromQuery returns the first non-empty value of the parameter. The query
// is scanned in place, as url.ParseQuery would build a map of all of it.
func (x Extractor) fromQuery(raw string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		name, value, _ := strings.Cut(pair, "=")
		if !x.isParam(name) {
			continue
		}
		if k, err := url.QueryUnescape(value); err == nil && k != "" {
			return k, true
		}
	}
	return "", false
}

// stripQuery returns raw without the parameter's pairs, the others
// verbatim; re-encoding url.Values would reorder and respell them.
func (x Extractor) stripQuery(raw string) string {
	if !strings.Contains(raw, x.Query) && !strings.ContainsAny(raw, "%+") {
		return raw // fast path: the name cannot be there, even escaped
	}
	n := strings.Count(raw, "&") + 1
	kept := make([]string, 0, n)
	for pair := range strings.SplitSeq(raw, "&") {
		if name, _, _ := strings.Cut(pair, "="); !x.isParam(name) {
			kept = append(kept, pair)
		}
	}
	if len(kept) == n {
		return raw
	}
	return strings.Join(kept, "&")
}

// isParam reports whether the raw (escaped) name is the parameter's.
func (x Extractor) isParam(name string) bool {
	if name == x.Query {
		return true
	}
	if !strings.ContainsAny(name, "%+") {
		return false
	}
	n, err := url.QueryUnescape(name)
	return err == nil && n == x.Query
}
