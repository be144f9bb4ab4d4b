package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

func parseAll(raw, method string) (*http.Response, string, error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
	resp, err := readResponseHead(br, method)
	if err != nil {
		return nil, "", err
	}
	if resp.Body == http.NoBody {
		return resp, "", nil
	}
	var b bodyReader
	b.init(br, resp)
	body, err := io.ReadAll(&b)
	return resp, string(body), err
}

func TestReadResponse(t *testing.T) {
	cases := []struct {
		name, raw, method, body string
		status                  int
		close                   bool
		trailer                 string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhelloNEXT", "GET", "hello", 200, false, ""},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: v\r\n\r\nNEXT", "GET", "abcde", 200, false, "v"},
		{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nuntil the end", "GET", "until the end", 200, true, ""},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "HEAD", "", 200, false, ""},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", "", 204, false, ""},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET", "", 304, false, ""},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", "ok", 200, true, ""},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET", "ok", 200, true, ""},
		{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "GET", "ok", 200, false, ""},
	}
	for _, tc := range cases {
		resp, body, err := parseAll(tc.raw, tc.method)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if resp.StatusCode != tc.status || body != tc.body || resp.Close != tc.close || resp.Trailer.Get("X-T") != tc.trailer {
			t.Errorf("%s: status %d body %q close %v trailer %v", tc.name, resp.StatusCode, body, resp.Close, resp.Trailer)
		}
	}
	resp, _, _ := parseAll("HTTP/1.1 200 OK\r\nx-lower: a\r\nSet-Cookie: 1\r\nSet-Cookie: 2\r\nContent-Length: 0\r\n\r\n", "GET")
	if resp.Header.Get("X-Lower") != "a" || len(resp.Header["Set-Cookie"]) != 2 {
		t.Errorf("headers %v", resp.Header)
	}
}

func TestReadResponseRejects(t *testing.T) {
	for name, raw := range map[string]string{
		"CL and TE":          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"conflicting CL":     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
		"bad CL":             "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
		"gzip TE":            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"obs-fold":           "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n",
		"space before colon": "HTTP/1.1 200 OK\r\nX-A : a\r\n\r\n",
		"bad status":         "HTTP/1.1 2xx OK\r\n\r\n",
		"bad version":        "HTTP/2.0 200 OK\r\n\r\n",
		"truncated head":     "HTTP/1.1 200 OK\r\nX-A: a\r\n",
		"bad chunk":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk without CRLF": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
		"truncated body":     "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
	} {
		if _, _, err := parseAll(raw, "GET"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzReadResponse: an upstream's bytes are outside input. Never panic, and
// a body read through bodyReader never exceeds what the head declared.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n",
		"HTTP/1.0 404 Not Found\r\n\r\nbody",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, body, err := parseAll(string(data), "GET")
		if err != nil {
			return
		}
		if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength && resp.Body != http.NoBody {
			t.Fatalf("read %d bytes of a %d-byte body", len(body), resp.ContentLength)
		}
	})
}
