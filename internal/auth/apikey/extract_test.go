package apikey

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func request(target string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestExtract(t *testing.T) {
	plain := Extractor{Header: "X-Api-Key"}
	scheme := Extractor{Header: "Authorization", Scheme: "ApiKey"}
	both := Extractor{Header: "X-Api-Key", Query: "api_key"}
	for name, tc := range map[string]struct {
		x     Extractor
		r     *http.Request
		want  string
		found bool
	}{
		"header":               {plain, request("/", "x-api-key", "k1"), "k1", true},
		"header absent":        {plain, request("/?api_key=k1"), "", false},
		"header empty":         {plain, request("/", "X-Api-Key", ""), "", false},
		"first header value":   {plain, request("/", "X-Api-Key", "k1", "X-Api-Key", "k2"), "k1", true},
		"scheme":               {scheme, request("/", "Authorization", "ApiKey k1"), "k1", true},
		"scheme any case":      {scheme, request("/", "Authorization", "apikey  k1"), "k1", true},
		"other scheme":         {scheme, request("/", "Authorization", "Bearer k1"), "", false},
		"scheme only":          {scheme, request("/", "Authorization", "ApiKey"), "", false},
		"scheme prefix only":   {scheme, request("/", "Authorization", "ApiKeyk1"), "", false},
		"scheme second value":  {scheme, request("/", "Authorization", "Bearer t", "Authorization", "ApiKey k1"), "k1", true},
		"query":                {both, request("/p?a=1&api_key=k%2B1&b=2"), "k+1", true},
		"query escaped name":   {both, request("/p?api%5Fkey=k1"), "k1", true},
		"query empty value":    {both, request("/p?api_key=&api_key=k2"), "k2", true},
		"header before query":  {both, request("/p?api_key=q", "X-Api-Key", "h"), "h", true},
		"query other name":     {both, request("/p?api_keys=k1"), "", false},
		"query bad escape":     {both, request("/p?api_key=%zz"), "", false},
		"query not configured": {plain, request("/p?api_key=k1"), "", false},
	} {
		t.Run(name, func(t *testing.T) {
			got, found := tc.x.Extract(tc.r)
			if got != tc.want || found != tc.found {
				t.Fatalf("Extract = %q, %v; want %q, %v", got, found, tc.want, tc.found)
			}
		})
	}
}

func TestStripHeader(t *testing.T) {
	r := request("/", "X-Api-Key", "k1", "X-Api-Key", "k2", "Accept", "*/*")
	Extractor{Header: "x-api-key"}.Strip(r)
	if _, ok := r.Header["X-Api-Key"]; ok || r.Header.Get("Accept") != "*/*" {
		t.Fatalf("headers after Strip: %v", r.Header)
	}

	r = request("/", "Authorization", "Bearer t", "Authorization", "apikey k1")
	Extractor{Header: "Authorization", Scheme: "ApiKey"}.Strip(r)
	if got := r.Header.Values("Authorization"); !reflect.DeepEqual(got, []string{"Bearer t"}) {
		t.Fatalf("Authorization after Strip: %q", got)
	}

	r = request("/", "Authorization", "ApiKey k1")
	Extractor{Header: "Authorization", Scheme: "ApiKey"}.Strip(r)
	if _, ok := r.Header["Authorization"]; ok {
		t.Fatalf("Authorization after Strip: %q", r.Header["Authorization"])
	}
}

func TestStripQuery(t *testing.T) {
	x := Extractor{Header: "X-Api-Key", Query: "api_key"}
	for raw, want := range map[string]string{
		"api_key=k1":                              "",
		"a=1&api_key=k1&b=%2F+x&c":                "a=1&b=%2F+x&c",
		"z=9&api_key=k1&a=1&api%5Fkey=k2&api_key": "z=9&a=1",
		"a=1&&api_key=k&b=2":                      "a=1&&b=2",
		"a=%41&b=c+d;e":                           "a=%41&b=c+d;e",
		"api_keys=1&xapi_key=2&api_key_=3":        "api_keys=1&xapi_key=2&api_key_=3",
		"":                                        "",
	} {
		r := request("/p", "X-Api-Key", "h")
		r.URL.RawQuery = raw
		x.Strip(r)
		if r.URL.RawQuery != want || r.Header.Get("X-Api-Key") != "" {
			t.Errorf("Strip(%q): RawQuery %q, want %q; header %q", raw, r.URL.RawQuery, want, r.Header.Get("X-Api-Key"))
		}
		if _, found := x.Extract(r); found {
			t.Errorf("Strip(%q): a key is still found", raw)
		}
	}
}

func TestStripQuerySpaceInName(t *testing.T) {
	r := request("/p?api+key=k1&a=1")
	Extractor{Query: "api key"}.Strip(r)
	if r.URL.RawQuery != "a=1" {
		t.Fatalf("RawQuery %q", r.URL.RawQuery)
	}
}
