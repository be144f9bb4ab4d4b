package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Example is one HTTP request the demo suggests trying. The same value
// prints the curl command (Curl) and performs the request with net/http
// (Do), so a test checks exactly what the banner tells a person to type.
type Example struct {
	// Via says where the request goes: the edge's public listener (""),
	// its admin listener (ViaAdmin), orders' sidecar outbound listener,
	// as orders' own app calls the mesh (ViaOutbound), or the runner's
	// trace receiver (ViaTraces).
	Via     string
	Method  string
	Path    string
	Headers [][2]string // in order, as printed; "Host" sets the request's host
	// Token names a consumer: the request carries a bearer JWT for it,
	// minted by the runner's token issuer (printed as
	// -H "Authorization: Bearer $(curl -s -X POST 'http://ISSUER/token?consumer=NAME')").
	Token string
	Body  string
	// Repeat runs the request this many times (0 and 1: once).
	Repeat int
	// How the output is printed (at most one): Grep filters it through
	// `grep Grep` (the check then wants Grep in the body); Count tallies a
	// JSON field's values (`grep -o | sort | uniq -c`); Codes prints only
	// the status codes; Quiet prints nothing; BodyOnly prints the body
	// without the status line and headers.
	Grep     string
	Count    string
	Codes    bool
	Quiet    bool
	BodyOnly bool
	Expect   Expect
}

// Where an Example goes.
const (
	ViaAdmin    = "admin"
	ViaOutbound = "outbound"
	ViaTraces   = "traces"
)

// Expect is what the responses of an example must show.
type Expect struct {
	// Status every response must have; Statuses: one per response, in order.
	Status   int
	Statuses []int
	// Body holds substrings every body must contain; LastBody, the last;
	// NoBody, substrings no body may contain.
	Body     []string
	LastBody []string
	NoBody   []string
	// Header maps a header name to tokens its comma-separated value must
	// list (in any order): {"Allow": {"GET", "POST"}}. A token that ends in
	// "…" stands for any token that starts with what precedes it:
	// {"Retry-After": {"…"}} wants the header, whatever its value.
	Header map[string][]string
	// Varies names a JSON field that, over the Repeat responses, must take
	// at least VariesMin distinct values (load balancing).
	Varies    string
	VariesMin int
	// Counts are how many responses have each value of the Count field.
	Counts map[string]int
}

// URL is the example's URL in env.
func (e Example) URL(env Env) string {
	switch e.Via {
	case ViaAdmin:
		return "http://" + env.Admin + e.Path
	case ViaOutbound:
		return "http://" + env.Outbound + e.Path
	case ViaTraces:
		return "http://" + env.Traces + e.Path
	}
	return "http://" + env.Public + e.Path
}

// Curl is the shell command that performs the example.
func (e Example) Curl(env Env) string {
	args := []string{"curl"}
	switch {
	case e.Codes:
		args = append(args, "-s", "-o", "/dev/null", "-w", shellQuote("%{http_code} "))
	case e.Quiet:
		args = append(args, "-s", "-o", "/dev/null")
	case e.Repeat > 1 || e.Grep != "" || e.BodyOnly:
		args = append(args, "-s")
	default:
		args = append(args, "-i")
	}
	if e.Method != "GET" && !(e.Method == "POST" && e.Body != "") {
		args = append(args, "-X", e.Method)
	}
	for _, h := range e.Headers {
		args = append(args, "-H", shellQuote(h[0]+": "+h[1]))
	}
	if e.Token != "" {
		args = append(args, "-H", `"Authorization: Bearer $(curl -s -X POST `+shellQuote(e.tokenURL(env))+`)"`)
	}
	if e.Body != "" {
		args = append(args, "-d", shellQuote(e.Body))
	}
	args = append(args, e.URL(env))
	cmd := strings.Join(args, " ")
	if e.Grep != "" {
		cmd += " | grep " + shellQuote(e.Grep)
	}
	if e.Repeat > 1 {
		each := cmd + "; echo"
		if e.Codes || e.Quiet {
			each = cmd
		}
		cmd = fmt.Sprintf("for i in $(seq %d); do %s; done", e.Repeat, each)
		switch {
		case e.Codes:
			cmd += "; echo"
		case e.Count != "":
			cmd += " | grep -o " + shellQuote(`"`+e.Count+`":"[^"]*"`) + " | sort | uniq -c"
		}
	}
	return cmd
}

// tokenURL is where the runner's issuer mints the example's token.
func (e Example) tokenURL(env Env) string {
	return "http://" + env.Issuer + "/token?consumer=" + url.QueryEscape(e.Token)
}

// token gets a JWT for e.Token from the runner's issuer.
func (e Example) token(ctx context.Context, client *http.Client, env Env) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.tokenURL(env), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST %s: %s: %s", e.tokenURL(env), resp.Status, data)
	}
	return strings.TrimSpace(string(data)), nil
}

// Describe is the expectation in words, printed under the curl line.
func (e Example) Describe() string {
	var parts []string
	if len(e.Expect.Statuses) > 0 {
		codes := make([]string, len(e.Expect.Statuses))
		for i, s := range e.Expect.Statuses {
			codes[i] = strconv.Itoa(s)
		}
		parts = append(parts, strings.Join(codes, " "))
	} else if !e.Quiet {
		parts = append(parts, fmt.Sprintf("%d %s", e.Expect.Status, http.StatusText(e.Expect.Status)))
	}
	for _, name := range sortedKeys(e.Expect.Header) {
		parts = append(parts, name+": "+strings.Join(e.Expect.Header[name], ", "))
	}
	if len(e.Expect.Body) > 0 {
		parts = append(parts, "body has "+strings.Join(e.Expect.Body, " "))
	}
	if len(e.Expect.NoBody) > 0 {
		parts = append(parts, "body lacks "+strings.Join(e.Expect.NoBody, " "))
	}
	if e.Grep != "" {
		parts = append(parts, "lines with "+e.Grep)
	}
	if e.Expect.Varies != "" {
		parts = append(parts, fmt.Sprintf("at least %d different %q", e.Expect.VariesMin, e.Expect.Varies))
	}
	if len(e.Expect.Counts) > 0 {
		var c []string
		for _, v := range sortedKeys(e.Expect.Counts) {
			c = append(c, fmt.Sprintf(`%d "%s":"%s"`, e.Expect.Counts[v], e.Count, v))
		}
		parts = append(parts, strings.Join(c, ", "))
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
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
func (e Example) Do(ctx context.Context, client *http.Client, env Env) ([]Response, error) {
	n := max(e.Repeat, 1)
	out := make([]Response, 0, n)
	var token string
	if e.Token != "" {
		var err error
		if token, err = e.token(ctx, client, env); err != nil {
			return nil, err
		}
	}
	for range n {
		var body io.Reader
		if e.Body != "" {
			body = strings.NewReader(e.Body)
		}
		req, err := http.NewRequestWithContext(ctx, e.Method, e.URL(env), body)
		if err != nil {
			return out, err
		}
		for _, h := range e.Headers {
			if strings.EqualFold(h[0], "Host") {
				req.Host = h[1]
				continue
			}
			req.Header.Add(h[0], h[1])
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if e.Body != "" && req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl -d sends it
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
	counts := map[string]int{}
	if len(e.Expect.Statuses) > 0 && len(rs) != len(e.Expect.Statuses) {
		errs = append(errs, fmt.Sprintf("%d responses, want %d", len(rs), len(e.Expect.Statuses)))
	}
	for i, r := range rs {
		before := len(errs)
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Sprintf("response %d: ", i+1)+fmt.Sprintf(format, args...))
		}
		want := e.Expect.Status
		if i < len(e.Expect.Statuses) {
			want = e.Expect.Statuses[i]
		}
		if r.Status != want {
			fail("status %d, want %d", r.Status, want)
		}
		body := e.Expect.Body
		if e.Grep != "" {
			body = append(slices.Clip(body), e.Grep)
		}
		if i == len(rs)-1 {
			body = append(slices.Clip(body), e.Expect.LastBody...)
		}
		for _, sub := range body {
			if !strings.Contains(string(r.Body), sub) {
				fail("body lacks %s", sub)
			}
		}
		for _, sub := range e.Expect.NoBody {
			if strings.Contains(string(r.Body), sub) {
				fail("body has %s", sub)
			}
		}
		for _, name := range sortedKeys(e.Expect.Header) {
			have := listTokens(r.Header.Values(name))
			for _, tok := range e.Expect.Header[name] {
				if !slices.ContainsFunc(have, func(h string) bool { return tokenMatch(tok, h) }) {
					fail("header %s: %q lacks %s", name, r.Header.Values(name), tok)
				}
			}
		}
		if e.Expect.Varies != "" || e.Count != "" {
			var m map[string]any
			if err := json.Unmarshal(r.Body, &m); err != nil {
				fail("body is not a JSON object: %v", err)
			} else {
				seen[fmt.Sprint(m[e.Expect.Varies])] = true
				if v, ok := m[e.Count].(string); ok {
					counts[v]++
				}
			}
		}
		if len(errs) > before {
			errs[len(errs)-1] += fmt.Sprintf("\n  body: %.300s", r.Body)
		}
	}
	if e.Expect.Varies != "" && len(seen) < e.Expect.VariesMin {
		errs = append(errs, fmt.Sprintf("%q took %d distinct values over %d responses (%v), want at least %d",
			e.Expect.Varies, len(seen), len(rs), sortedKeys(seen), e.Expect.VariesMin))
	}
	if e.Count != "" && !maps.Equal(counts, e.Expect.Counts) {
		errs = append(errs, fmt.Sprintf("%q counted %v over %d responses, want %v", e.Count, counts, len(rs), e.Expect.Counts))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s\n  %s", e.Curl(Env{Public: "EDGE", Admin: "ADMIN", Outbound: "OUTBOUND", Traces: "TRACES", Issuer: "ISSUER"}), strings.Join(errs, "\n  "))
	}
	return nil
}

// tokenMatch reports whether a header's token is want: equal, or, when want
// ends in "…", starting with what precedes it.
func tokenMatch(want, token string) bool {
	if prefix, ok := strings.CutSuffix(want, "…"); ok {
		return strings.HasPrefix(token, prefix)
	}
	return token == want
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
