package httpcache

import (
	"net/http"
	"testing"
	"time"
)

// t0 is the Date of the test responses.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func httpDate(t time.Time) string { return t.Format(http.TimeFormat) }

func TestFreshnessLifetime(t *testing.T) {
	date := httpDate(t0)
	tests := []struct {
		name          string
		status        int
		header        http.Header
		shared        bool
		want          time.Duration
		wantHeuristic bool
	}{
		{"s-maxage for shared", 200, http.Header{"Cache-Control": {"s-maxage=100, max-age=50"}}, true, 100 * time.Second, false},
		{"s-maxage ignored by private", 200, http.Header{"Cache-Control": {"s-maxage=100, max-age=50"}}, false, 50 * time.Second, false},
		{"max-age over Expires", 200, http.Header{"Cache-Control": {"max-age=50"}, "Date": {date}, "Expires": {httpDate(t0.Add(time.Hour))}}, true, 50 * time.Second, false},
		{"s-maxage over Expires", 200, http.Header{"Cache-Control": {"s-maxage=7"}, "Date": {date}, "Expires": {httpDate(t0.Add(time.Hour))}}, true, 7 * time.Second, false},
		{"invalid max-age is stale", 200, http.Header{"Cache-Control": {"max-age=soon"}, "Date": {date}, "Expires": {httpDate(t0.Add(time.Hour))}}, true, 0, false},
		{"Expires minus Date", 200, http.Header{"Date": {date}, "Expires": {httpDate(t0.Add(time.Hour))}}, true, time.Hour, false},
		{"first Expires wins", 200, http.Header{"Date": {date}, "Expires": {httpDate(t0.Add(time.Hour)), httpDate(t0.Add(2 * time.Hour))}}, true, time.Hour, false},
		{"Expires in RFC 850 form", 200, http.Header{"Date": {date}, "Expires": {"Friday, 01-Mar-24 12:10:00 GMT"}}, true, 10 * time.Minute, false},
		{"Expires before Date", 200, http.Header{"Date": {date}, "Expires": {httpDate(t0.Add(-time.Hour))}}, true, 0, false},
		{"Expires 0 is expired", 200, http.Header{"Date": {date}, "Expires": {"0"}, "Last-Modified": {httpDate(t0.Add(-240 * time.Hour))}}, true, 0, false},
		{"Expires without Date", 200, http.Header{"Expires": {httpDate(t0.Add(time.Hour))}}, true, 0, false},
		{"Expires far future clamped", 200, http.Header{"Date": {date}, "Expires": {"Fri, 31 Dec 9999 23:59:59 GMT"}}, true, MaxDelta, false},
		{"heuristic 10%", 200, http.Header{"Date": {date}, "Last-Modified": {httpDate(t0.Add(-50 * time.Hour))}}, true, 5 * time.Hour, true},
		{"heuristic capped", 200, http.Header{"Date": {date}, "Last-Modified": {httpDate(t0.Add(-100 * 24 * time.Hour))}}, true, HeuristicCap, true},
		{"heuristic 404", 404, http.Header{"Date": {date}, "Last-Modified": {httpDate(t0.Add(-10 * time.Hour))}}, true, time.Hour, true},
		{"heuristic 451", 451, http.Header{"Date": {date}, "Last-Modified": {httpDate(t0.Add(-10 * time.Hour))}}, true, time.Hour, true},
		{"no heuristic for 302", 302, http.Header{"Date": {date}, "Last-Modified": {httpDate(t0.Add(-10 * time.Hour))}}, true, 0, false},
		{"no heuristic for 500", 500, http.Header{"Date": {date}, "Last-Modified": {httpDate(t0.Add(-10 * time.Hour))}}, true, 0, false},
		{"public allows heuristic", 500, http.Header{"Cache-Control": {"public"}, "Date": {date}, "Last-Modified": {httpDate(t0.Add(-10 * time.Hour))}}, true, time.Hour, true},
		{"heuristic needs Last-Modified", 200, http.Header{"Date": {date}}, true, 0, false},
		{"heuristic needs Date", 200, http.Header{"Last-Modified": {httpDate(t0.Add(-10 * time.Hour))}}, true, 0, false},
		{"heuristic needs valid Last-Modified", 200, http.Header{"Date": {date}, "Last-Modified": {"yesterday"}}, true, 0, false},
		{"Last-Modified after Date", 200, http.Header{"Date": {date}, "Last-Modified": {httpDate(t0.Add(time.Hour))}}, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, heuristic := FreshnessLifetime(ResponseInfo{Status: tt.status, Header: tt.header}, tt.shared)
			if got != tt.want || heuristic != tt.wantHeuristic {
				t.Errorf("FreshnessLifetime = %v, %v; want %v, %v", got, heuristic, tt.want, tt.wantHeuristic)
			}
		})
	}
}

func TestCurrentAge(t *testing.T) {
	responseTime := t0
	requestTime := t0.Add(-time.Second)
	now := t0.Add(10 * time.Second)
	tests := []struct {
		name   string
		header http.Header
		now    time.Time
		want   time.Duration
	}{
		// corrected_age_value = 0 + 1s delay; + 10s resident.
		{"no Date, no Age", http.Header{}, now, 11 * time.Second},
		{"Date equal to response time", http.Header{"Date": {httpDate(t0)}}, now, 11 * time.Second},
		{"Age corrected by delay", http.Header{"Date": {httpDate(t0)}, "Age": {"100"}}, now, 111 * time.Second},
		{"apparent age wins", http.Header{"Date": {httpDate(t0.Add(-30 * time.Second))}}, now, 40 * time.Second},
		{"corrected age wins", http.Header{"Date": {httpDate(t0.Add(-30 * time.Second))}, "Age": {"50"}}, now, 61 * time.Second},
		{"Date in the future", http.Header{"Date": {httpDate(t0.Add(time.Hour))}}, now, 11 * time.Second},
		{"invalid Age is 0", http.Header{"Age": {"ten"}}, now, 11 * time.Second},
		{"negative Age is 0", http.Header{"Age": {"-5"}}, now, 11 * time.Second},
		{"first Age line", http.Header{"Age": {"5", "500"}}, now, 16 * time.Second},
		{"huge Age clamped", http.Header{"Age": {"99999999999"}}, now, MaxDelta},
		{"now before response time", http.Header{}, t0.Add(-time.Minute), time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CurrentAge(ResponseInfo{Status: 200, Header: tt.header}, requestTime, responseTime, tt.now)
			if got != tt.want {
				t.Errorf("CurrentAge = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnsureDate(t *testing.T) {
	received := time.Date(2024, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name   string
		header http.Header
		want   string
	}{
		{"absent", http.Header{}, "Fri, 01 Mar 2024 12:00:00 GMT"},
		{"invalid replaced", http.Header{"Date": {"now"}}, "Fri, 01 Mar 2024 12:00:00 GMT"},
		{"valid kept", http.Header{"Date": {"Thu, 29 Feb 2024 08:00:00 GMT"}}, "Thu, 29 Feb 2024 08:00:00 GMT"},
	}
	for _, tt := range tests {
		EnsureDate(tt.header, received)
		if got := tt.header.Values("Date"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: Date = %q, want [%q]", tt.name, got, tt.want)
		}
	}
}
