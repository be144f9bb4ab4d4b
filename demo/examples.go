package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Example is one request the demo suggests trying. The same value prints
// the curl command (Curl) and performs the request with net/http (Do), so a
// test checks exactly what the banner tells a person to type.
type Example struct {
	Title string
	// Admin sends the request to the admin address instead of the public
	// listener.
	Admin   bool
	Method  string
	Path    string
	Headers [][2]string // in order, as printed
	Body    string
	// Repeat runs the request this many times (0 and 1: once).
	Repeat int
	// Grep filters the printed output through `grep Grep`; the check then
	// wants Grep in the body.
	Grep   string
	Expect Expect
}

// Expect is what every response of an example must show.
type Expect struct {
	Status int
	// Body holds substrings the body must contain.
	Body []string
	// Header maps a header name to tokens its comma-separated value must
	// list (in any order): {"Allow": {"GET", "POST"}}.
	Header map[string][]string
	// Varies names a JSON field that, over the Repeat responses, must take
	// at least VariesMin distinct values (load balancing).
	Varies    string
	VariesMin int
}

// Examples returns the demo's examples against the public and admin addresses.
func Examples() []Example {
	served := map[string][]string{"X-Served-By": {"meshgate"}}
	return []Example{{
		Title:  "Path routing: /products/{id} goes to catalog v1",
		Method: "GET", Path: "/products/42",
		Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`, `"version":"v1"`, `"id":"42"`}, Header: served},
	}, {
		Title:  "Header routing: the same path with X-Api-Version: 2 goes to catalog v2",
		Method: "GET", Path: "/products/42", Headers: [][2]string{{"X-Api-Version", "2"}},
		Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`, `"version":"v2"`, `"stock":`}, Header: served},
	}, {
		Title:  "Method routing: GET /orders goes to orders",
		Method: "GET", Path: "/orders",
		Expect: Expect{Status: 200, Body: []string{`"service":"orders"`, `"orders":`}, Header: served},
	}, {
		Title:  "Method routing: POST /orders goes to orders, which echoes the order with an id",
		Method: "POST", Path: "/orders",
		Headers: [][2]string{{"Content-Type", "application/json"}},
		Body:    `{"item":"book","qty":2}`,
		Expect:  Expect{Status: 201, Body: []string{`"service":"orders"`, `"item":"book"`, `"id":"ord-`}, Header: served},
	}, {
		Title:  "Method routing: any other method on /orders is 405, with Allow",
		Method: "DELETE", Path: "/orders",
		Expect: Expect{Status: 405, Header: map[string][]string{"Allow": {"GET", "POST"}}},
	}, {
		Title:  "Prefix routing with a rewrite: /api/products/7 reaches catalog as /products/7",
		Method: "GET", Path: "/api/products/7",
		Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`, `"path":"/products/7"`}, Header: served},
	}, {
		Title:  `Load balancing: round robin over two catalog v1 instances; watch "instance" alternate`,
		Method: "GET", Path: "/products/1", Repeat: 4,
		Expect: Expect{Status: 200, Body: []string{`"version":"v1"`}, Varies: "instance", VariesMin: 2},
	}, {
		Title: "Metrics: the edge's Prometheus metrics on the admin address",
		Admin: true, Method: "GET", Path: "/metrics", Grep: "meshgate_",
		Expect: Expect{Status: 200},
	}}
}

// URL is the example's URL against the given public and admin addresses.
func (e Example) URL(public, admin string) string {
	if e.Admin {
		return "http://" + admin + e.Path
	}
	return "http://" + public + e.Path
}

// Curl is the shell command that performs the example.
func (e Example) Curl(public, admin string) string {
	args := []string{"curl"}
	if e.Repeat > 1 || e.Grep != "" {
		args = append(args, "-s")
	} else {
		args = append(args, "-i")
	}
	if e.Method != "GET" && !(e.Method == "POST" && e.Body != "") {
		args = append(args, "-X", e.Method)
	}
	for _, h := range e.Headers {
		args = append(args, "-H", shellQuote(h[0]+": "+h[1]))
	}
	if e.Body != "" {
		args = append(args, "-d", shellQuote(e.Body))
	}
	args = append(args, e.URL(public, admin))
	cmd := strings.Join(args, " ")
	if e.Grep != "" {
		cmd += " | grep " + shellQuote(e.Grep)
	}
	if e.Repeat > 1 {
		cmd = fmt.Sprintf("for i in $(seq %d); do %s; echo; done", e.Repeat, cmd)
	}
	return cmd
}

// Describe is the expectation in words, printed under the curl line.
func (e Example) Describe() string {
	parts := []string{fmt.Sprintf("%d %s", e.Expect.Status, http.StatusText(e.Expect.Status))}
	for _, name := range sortedKeys(e.Expect.Header) {
		parts = append(parts, name+": "+strings.Join(e.Expect.Header[name], ", "))
	}
	if len(e.Expect.Body) > 0 {
		parts = append(parts, "body has "+strings.Join(e.Expect.Body, " "))
	}
	if e.Grep != "" {
		parts = append(parts, "lines with "+e.Grep)
	}
	if e.Expect.Varies != "" {
		parts = append(parts, fmt.Sprintf("at least %d different %q", e.Expect.VariesMin, e.Expect.Varies))
	}
	return strings.Join(parts, "; ")
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Response is one answer to an example's request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do performs the example's request(s) with client, Repeat times.
func (e Example) Do(ctx context.Context, client *http.Client, public, admin string) ([]Response, error) {
	n := max(e.Repeat, 1)
	out := make([]Response, 0, n)
	for range n {
		var body io.Reader
		if e.Body != "" {
			body = strings.NewReader(e.Body)
		}
		req, err := http.NewRequestWithContext(ctx, e.Method, e.URL(public, admin), body)
		if err != nil {
			return out, err
		}
		for _, h := range e.Headers {
			req.Header.Add(h[0], h[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return out, err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return out, err
		}
		out = append(out, Response{Status: resp.StatusCode, Header: resp.Header, Body: data})
	}
	return out, nil
}

// Check reports how the responses miss the example's expectation (nil: they
// meet it).
func (e Example) Check(rs []Response) error {
	var errs []string
	seen := map[string]bool{}
	for i, r := range rs {
		before := len(errs)
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Sprintf("response %d: ", i+1)+fmt.Sprintf(format, args...))
		}
		if r.Status != e.Expect.Status {
			fail("status %d, want %d", r.Status, e.Expect.Status)
		}
		want := e.Expect.Body
		if e.Grep != "" {
			want = append(slices.Clip(want), e.Grep)
		}
		for _, sub := range want {
			if !strings.Contains(string(r.Body), sub) {
				fail("body lacks %s", sub)
			}
		}
		for _, name := range sortedKeys(e.Expect.Header) {
			have := listTokens(r.Header.Values(name))
			for _, tok := range e.Expect.Header[name] {
				if !slices.Contains(have, tok) {
					fail("header %s: %q lacks %s", name, r.Header.Values(name), tok)
				}
			}
		}
		if e.Expect.Varies != "" {
			var m map[string]any
			if err := json.Unmarshal(r.Body, &m); err != nil {
				fail("body is not a JSON object: %v", err)
			} else {
				seen[fmt.Sprint(m[e.Expect.Varies])] = true
			}
		}
		if len(errs) > before {
			errs[len(errs)-1] += fmt.Sprintf("\n  body: %.300s", r.Body)
		}
	}
	if e.Expect.Varies != "" && len(seen) < e.Expect.VariesMin {
		errs = append(errs, fmt.Sprintf("%q took %d distinct values over %d responses (%v), want at least %d",
			e.Expect.Varies, len(seen), len(rs), sortedSet(seen), e.Expect.VariesMin))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s\n  %s", e.Title, strings.Join(errs, "\n  "))
	}
	return nil
}

func listTokens(values []string) []string {
	var toks []string
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			toks = append(toks, strings.TrimSpace(t))
		}
	}
	return toks
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
