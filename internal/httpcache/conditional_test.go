package httpcache

import (
	"net/http"
	"reflect"
	"testing"
)

func TestNotModified(t *testing.T) {
	lm := "Fri, 01 Mar 2024 10:00:00 GMT"
	before := "Fri, 01 Mar 2024 09:59:59 GMT"
	after := "Fri, 01 Mar 2024 10:00:01 GMT"
	stored := http.Header{"Etag": {`"v1"`}, "Last-Modified": {lm}, "Date": {"Fri, 01 Mar 2024 12:00:00 GMT"}}
	weakStored := http.Header{"Etag": {`W/"v1"`}}
	noValidators := http.Header{"Date": {"Fri, 01 Mar 2024 12:00:00 GMT"}}
	tests := []struct {
		name   string
		req    http.Header
		stored http.Header
		want   bool
	}{
		{"no conditions", http.Header{}, stored, false},
		{"etag match", http.Header{"If-None-Match": {`"v1"`}}, stored, true},
		{"etag mismatch", http.Header{"If-None-Match": {`"v2"`}}, stored, false},
		{"weak request tag matches strong", http.Header{"If-None-Match": {`W/"v1"`}}, stored, true},
		{"strong request tag matches weak", http.Header{"If-None-Match": {`"v1"`}}, weakStored, true},
		{"list", http.Header{"If-None-Match": {`"a", W/"b" ,"v1"`}}, stored, true},
		{"list over lines", http.Header{"If-None-Match": {`"a"`, `"v1"`}}, stored, true},
		{"comma inside a tag", http.Header{"If-None-Match": {`"a,v1"`}}, stored, false},
		{"opaque tags are case-sensitive", http.Header{"If-None-Match": {`"V1"`}}, stored, false},
		{"lower-case w/ is not weak", http.Header{"If-None-Match": {`w/"v1"`}}, stored, false},
		{"star", http.Header{"If-None-Match": {"*"}}, noValidators, true},
		{"star in a list is malformed", http.Header{"If-None-Match": {`*, "v1"`}}, stored, false},
		{"malformed", http.Header{"If-None-Match": {`v1`}}, stored, false},
		{"unterminated", http.Header{"If-None-Match": {`"v1`}}, stored, false},
		{"empty", http.Header{"If-None-Match": {""}}, stored, false},
		{"stored without etag", http.Header{"If-None-Match": {`"v1"`}}, noValidators, false},
		{"stored etag malformed", http.Header{"If-None-Match": {`"v1"`}}, http.Header{"Etag": {`"v1" junk`}}, false},
		{"INM takes precedence over IMS", http.Header{"If-None-Match": {`"v2"`}, "If-Modified-Since": {after}}, stored, false},
		{"IMS equal", http.Header{"If-Modified-Since": {lm}}, stored, true},
		{"IMS later", http.Header{"If-Modified-Since": {after}}, stored, true},
		{"IMS earlier", http.Header{"If-Modified-Since": {before}}, stored, false},
		{"IMS invalid ignored", http.Header{"If-Modified-Since": {"yesterday"}}, stored, false},
		{"IMS repeated ignored", http.Header{"If-Modified-Since": {after, after}}, stored, false},
		{"IMS against Date", http.Header{"If-Modified-Since": {"Fri, 01 Mar 2024 12:00:00 GMT"}}, noValidators, true},
		{"IMS before Date", http.Header{"If-Modified-Since": {after}}, noValidators, false},
		{"IMS with invalid Last-Modified", http.Header{"If-Modified-Since": {after}}, http.Header{"Last-Modified": {"x"}, "Date": {after}}, false},
		{"IMS with neither", http.Header{"If-Modified-Since": {after}}, http.Header{}, false},
		{"If-Match not a cache's business", http.Header{"If-Match": {`"v2"`}, "If-None-Match": {`"v1"`}}, stored, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NotModified(tt.req, tt.stored); got != tt.want {
				t.Errorf("NotModified = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidatorsFor(t *testing.T) {
	tests := []struct {
		name   string
		stored http.Header
		want   http.Header
	}{
		{"both", http.Header{"Etag": {`W/"v1"`}, "Last-Modified": {"Fri, 01 Mar 2024 10:00:00 GMT"}},
			http.Header{"If-None-Match": {`W/"v1"`}, "If-Modified-Since": {"Fri, 01 Mar 2024 10:00:00 GMT"}}},
		{"obsolete date re-formatted", http.Header{"Last-Modified": {"Friday, 01-Mar-24 10:00:00 GMT"}},
			http.Header{"If-Modified-Since": {"Fri, 01 Mar 2024 10:00:00 GMT"}}},
		{"malformed left out", http.Header{"Etag": {"v1"}, "Last-Modified": {"x"}}, http.Header{}},
		{"none", http.Header{}, http.Header{}},
	}
	for _, tt := range tests {
		if got := ValidatorsFor(tt.stored); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ValidatorsFor = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNotModifiedHeaders(t *testing.T) {
	stored := http.Header{
		"Cache-Control":    {"max-age=60"},
		"Content-Location": {"/a.en"},
		"Date":             {"Fri, 01 Mar 2024 12:00:00 GMT"},
		"Etag":             {`"v1"`},
		"Expires":          {"Fri, 01 Mar 2024 12:01:00 GMT"},
		"Vary":             {"Accept-Encoding", "Accept"},
		"Last-Modified":    {"Fri, 01 Mar 2024 10:00:00 GMT"},
		"Content-Type":     {"text/html"},
		"Content-Length":   {"123"},
		"Set-Cookie":       {"a=b"},
	}
	got := NotModifiedHeaders(stored)
	want := http.Header{
		"Cache-Control":    {"max-age=60"},
		"Content-Location": {"/a.en"},
		"Date":             {"Fri, 01 Mar 2024 12:00:00 GMT"},
		"Etag":             {`"v1"`},
		"Expires":          {"Fri, 01 Mar 2024 12:01:00 GMT"},
		"Vary":             {"Accept-Encoding", "Accept"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NotModifiedHeaders = %v, want %v", got, want)
	}
	got["Vary"][0] = "changed"
	if stored["Vary"][0] != "Accept-Encoding" {
		t.Error("NotModifiedHeaders shares its values with the stored header")
	}

	noETag := http.Header{"Date": {"Fri, 01 Mar 2024 12:00:00 GMT"}, "Last-Modified": {"Fri, 01 Mar 2024 10:00:00 GMT"}}
	want = http.Header{"Date": {"Fri, 01 Mar 2024 12:00:00 GMT"}, "Last-Modified": {"Fri, 01 Mar 2024 10:00:00 GMT"}}
	if got := NotModifiedHeaders(noETag); !reflect.DeepEqual(got, want) {
		t.Errorf("without ETag: NotModifiedHeaders = %v, want %v", got, want)
	}
}

func TestUpdateStored(t *testing.T) {
	stored := http.Header{
		"Cache-Control":    {"max-age=60"},
		"Date":             {"Fri, 01 Mar 2024 12:00:00 GMT"},
		"Age":              {"3500"},
		"Etag":             {`"v1"`},
		"Content-Type":     {"text/html"},
		"Content-Length":   {"123"},
		"Content-Encoding": {"gzip"},
		"X-Kept":           {"yes"},
	}
	resp304 := http.Header{
		"Cache-Control":      {"max-age=120"},
		"Date":               {"Fri, 01 Mar 2024 13:00:00 GMT"},
		"Etag":               {`"v1"`},
		"X-New":              {"1", "2"},
		"Content-Length":     {"0"},
		"Content-Encoding":   {"br"},
		"Content-Range":      {"bytes 0-1/2"},
		"Transfer-Encoding":  {"chunked"},
		"Connection":         {"close, X-Hop"},
		"X-Hop":              {"hop"},
		"Keep-Alive":         {"timeout=5"},
		"Set-Cookie":         {"session=1"},
		"Proxy-Authenticate": {"Basic"},
	}
	UpdateStored(stored, resp304)
	want := http.Header{
		"Cache-Control":    {"max-age=120"},
		"Date":             {"Fri, 01 Mar 2024 13:00:00 GMT"},
		"Etag":             {`"v1"`},
		"Content-Type":     {"text/html"},
		"Content-Length":   {"123"},
		"Content-Encoding": {"gzip"},
		"X-Kept":           {"yes"},
		"X-New":            {"1", "2"},
	}
	if !reflect.DeepEqual(stored, want) {
		t.Errorf("UpdateStored gave\n%v\nwant\n%v", stored, want)
	}
	resp304["X-New"][0] = "changed"
	if stored["X-New"][0] != "1" {
		t.Error("UpdateStored shares its values with the 304")
	}

	// An Age in the 304 replaces the stored one.
	stored = http.Header{"Age": {"3500"}}
	UpdateStored(stored, http.Header{"Age": {"7"}})
	if got := stored.Values("Age"); !reflect.DeepEqual(got, []string{"7"}) {
		t.Errorf("Age = %q, want [7]", got)
	}
}
