package httpcache

import (
	"net/http"
	"testing"
)

func TestStorable(t *testing.T) {
	fresh := func(extra ...string) http.Header {
		h := http.Header{"Cache-Control": {"max-age=60"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Add(extra[i], extra[i+1])
		}
		return h
	}
	auth := http.Header{"Authorization": {"Bearer x"}}
	tests := []struct {
		name       string
		method     string
		reqHeader  http.Header
		status     int
		respHeader http.Header
		opts       StoreOptions
		wantReason string // "" when storable
	}{
		{"plain max-age", "GET", nil, 200, fresh(), StoreOptions{}, ""},
		{"HEAD", "HEAD", nil, 200, fresh(), StoreOptions{}, ""},
		{"POST", "POST", nil, 200, fresh(), StoreOptions{}, ReasonMethod},
		{"lower-case method is another method", "get", nil, 200, fresh(), StoreOptions{}, ReasonMethod},
		{"206 not understood", "GET", nil, 206, fresh(), StoreOptions{}, ReasonStatus},
		{"304 not stored", "GET", nil, 304, fresh(), StoreOptions{}, ReasonStatus},
		{"unrecognized status", "GET", nil, 299, fresh(), StoreOptions{}, ReasonStatus},
		{"1xx", "GET", nil, 103, fresh(), StoreOptions{}, ReasonStatus},
		{"request no-store", "GET", http.Header{"Cache-Control": {"no-store"}}, 200, fresh(), StoreOptions{}, ReasonNoStore},
		{"response no-store", "GET", nil, 200, http.Header{"Cache-Control": {"max-age=60, no-store"}}, StoreOptions{}, ReasonNoStore},
		{"must-understand overrides no-store", "GET", nil, 200, http.Header{"Cache-Control": {"max-age=60, no-store, must-understand"}}, StoreOptions{}, ""},
		{"must-understand with an unknown status", "GET", nil, 299, http.Header{"Cache-Control": {"max-age=60, no-store, must-understand"}}, StoreOptions{}, ReasonStatus},
		{"must-understand does not cover request no-store", "GET", http.Header{"Cache-Control": {"no-store"}}, 200, http.Header{"Cache-Control": {"max-age=60, must-understand"}}, StoreOptions{}, ReasonNoStore},
		{"private", "GET", nil, 200, http.Header{"Cache-Control": {"private, max-age=60"}}, StoreOptions{}, ReasonPrivate},
		{"private with fields", "GET", nil, 200, http.Header{"Cache-Control": {`private="Set-Cookie", max-age=60`}}, StoreOptions{}, ReasonPrivate},
		{"no-cache is storable", "GET", nil, 200, http.Header{"Cache-Control": {"no-cache"}}, StoreOptions{}, ""},
		{"authorization refused", "GET", auth, 200, fresh(), StoreOptions{}, ReasonAuthorization},
		{"authorization with public", "GET", auth, 200, http.Header{"Cache-Control": {"public, max-age=60"}}, StoreOptions{}, ""},
		{"authorization with s-maxage", "GET", auth, 200, http.Header{"Cache-Control": {"s-maxage=60"}}, StoreOptions{}, ""},
		{"authorization with must-revalidate", "GET", auth, 200, http.Header{"Cache-Control": {"must-revalidate, max-age=60"}}, StoreOptions{}, ""},
		{"vary star", "GET", nil, 200, fresh("Vary", "Accept, *"), StoreOptions{}, ReasonVaryStar},
		{"vary names", "GET", nil, 200, fresh("Vary", "Accept-Encoding"), StoreOptions{}, ""},
		{"set-cookie refused", "GET", nil, 200, fresh("Set-Cookie", "a=b"), StoreOptions{}, ReasonSetCookie},
		{"set-cookie allowed", "GET", nil, 200, fresh("Set-Cookie", "a=b"), StoreOptions{StoreSetCookie: true}, ""},
		{"too large", "GET", nil, 200, fresh("Content-Length", "1001"), StoreOptions{MaxBodyBytes: 1000}, ReasonTooLarge},
		{"at the limit", "GET", nil, 200, fresh("Content-Length", "1000"), StoreOptions{MaxBodyBytes: 1000}, ""},
		{"no limit", "GET", nil, 200, fresh("Content-Length", "99999999"), StoreOptions{}, ""},
		{"no length", "GET", nil, 200, fresh(), StoreOptions{MaxBodyBytes: 1000}, ""},
		{"repeated equal length", "GET", nil, 200, fresh("Content-Length", "10, 10", "Content-Length", "10"), StoreOptions{MaxBodyBytes: 1000}, ""},
		{"conflicting lengths", "GET", nil, 200, fresh("Content-Length", "10, 11"), StoreOptions{MaxBodyBytes: 1000}, ReasonLength},
		{"invalid length", "GET", nil, 200, fresh("Content-Length", "+10"), StoreOptions{MaxBodyBytes: 1000}, ReasonLength},
		{"HEAD length not a body", "HEAD", nil, 200, fresh("Content-Length", "5000"), StoreOptions{MaxBodyBytes: 1000}, ""},
		{"heuristic status", "GET", nil, 200, http.Header{}, StoreOptions{}, ""},
		{"heuristic 404", "GET", nil, 404, http.Header{}, StoreOptions{}, ""},
		{"validator alone is not enough", "GET", nil, 500, http.Header{"Etag": {`"x"`}}, StoreOptions{}, ReasonNoFreshness},
		{"302 without freshness", "GET", nil, 302, http.Header{}, StoreOptions{}, ReasonNoFreshness},
		{"302 with Expires", "GET", nil, 302, http.Header{"Expires": {"0"}}, StoreOptions{}, ""},
		{"500 with public", "GET", nil, 500, http.Header{"Cache-Control": {"public"}}, StoreOptions{}, ""},
		{"503 with s-maxage", "GET", nil, 503, http.Header{"Cache-Control": {"s-maxage=5"}}, StoreOptions{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqHeader := tt.reqHeader
			if reqHeader == nil {
				reqHeader = http.Header{}
			}
			ok, reason := Storable(tt.method, reqHeader, tt.status, tt.respHeader, tt.opts)
			if ok != (tt.wantReason == "") || reason != tt.wantReason {
				t.Errorf("Storable = %v, %q; want %v, %q", ok, reason, tt.wantReason == "", tt.wantReason)
			}
		})
	}
}
