package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The transform suite: what reshaping a response body costs the edge.
// A backend answers every request with the same 1 KiB JSON order (nested
// objects, an array of items) over keep-alive HTTP/1.1; five edges proxy
// it: one untouched (plain), and four whose route transforms the response
// body (routes[].transform.response.body): a deny-list filter of a few
// nested fields, a declarative mapping (rename, move, wrap), a jq
// expression, and JSON → XML. Edges and backend on core 0 (GOMAXPROCS=1),
// wrk on core 1, as in the dataplane suite. Before measuring, every edge
// must answer 200 with the expected body (decoded, a field checked, and
// its Content-Type), so a transform that is not applied cannot pass for
// a fast one; a measured run with any non-2xx response fails the suite.
// req/s from wrk -t1 -c50. As in the auth suite, each round measures every
// transform edge in a pair with the plain edge, the two alternating in
// slices (runPairs; plain first in one pair, last in the next; the
// transform edges in a rotating order), and each ratio is the median over
// rounds of the pair's transform/plain req/s.
//
// The backend is this harness itself, run again with
// MESHGATE_BENCH_TRANSFORM_BACKEND=addr (see init below): the shared
// backend binary only answers filler bytes.
//
// BENCH_TRANSFORM_PROFILE=dir: after the rounds, a CPU profile of each edge
// under the same load (BENCH_DURATION long, from its admin listener's
// pprof) is written to dir/<edge>.pprof, for
// `go tool pprof -top bin/edge dir/transform-jq.pprof`.

// Lowest acceptable transform/plain req/s.
const (
	transformTargetCheap = 0.85 // filter and map
	transformTargetHeavy = 0.7  // jq and XML
)

// transformBackendEnv makes this binary the suite's JSON backend.
const transformBackendEnv = "MESHGATE_BENCH_TRANSFORM_BACKEND"

// transformDocSize is the size of the backend's document.
const transformDocSize = 1024

// transformItems is the number of items in the document.
const transformItems = 4

func init() {
	if addr := os.Getenv(transformBackendEnv); addr != "" {
		os.Exit(serveTransformBackend(addr))
	}
}

// transformDoc is the backend's answer: an order of exactly
// transformDocSize bytes (a note pads it).
var transformDoc = func() []byte {
	var b strings.Builder
	b.WriteString(`{"id":"ord_8f3a2c71","name":"Spring restock","status":"shipped","created_at":"2026-03-14T09:26:53Z",`)
	b.WriteString(`"customer":{"id":"cus_4417","name":"Ada Lovelace","email":"ada@example.com","phone":"+44 20 7946 0958",`)
	b.WriteString(`"address":{"street":"12 Analytical Row","city":"London","postcode":"EC1A 1BB","country":"GB"}},`)
	b.WriteString(`"payment":{"method":"card","card":{"brand":"visa","last4":"4242","fingerprint":"fp_9d8c7b6a5f4e"},"captured":true},`)
	b.WriteString(`"items":[`)
	names := []string{"Brass hinge", "Oak shelf", "Steel bracket", "Wall anchor", "Wood screw"}
	for i := range transformItems {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%d","name":%q,"qty":%d,"price":{"amount":"%d.50","currency":"EUR"},"warehouse":"ams-%d"}`,
			1001+i, names[i%len(names)], 1+i%3, 3+2*i, 1+i%2)
	}
	b.WriteString(`],"totals":{"subtotal":"32.00","total":"38.40","currency":"EUR"},`)
	b.WriteString(`"internal":{"trace_id":"4bf92f3577b34da6","shard":3,"risk_score":0.12},"note":"`)
	const end = `"}`
	if pad := transformDocSize - b.Len() - len(end); pad > 0 {
		b.WriteString(strings.Repeat("Leave at the loading bay. ", pad/26+1)[:pad])
	}
	b.WriteString(end)
	return []byte(b.String())
}()

// serveTransformBackend answers transformDoc to every request on addr
// (and echoes a WebSocket upgrade's bytes and a gRPC call's messages, over
// h2c: the faults suite's streams) until SIGTERM; it returns the exit
// status.
func serveTransformBackend(addr string) int {
	body := transformDoc
	length := strconv.Itoa(len(body))
	echo := newGRPCEcho()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isGRPC(r) {
			echo.ServeHTTP(w, r)
			return
		}
		if echoUpgrade(w, r) { // the faults suite's streams
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		hdr := w.Header()
		hdr["Content-Type"] = []string{"application/json"}
		hdr["Content-Length"] = []string{length}
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Printf("transform backend: %v", err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute,
		Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true) // gRPC from the sidecar: h2c with prior knowledge
	fmt.Printf("transform backend listening on %s, %d bytes of JSON\n", ln.Addr(), len(body))
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Printf("transform backend: %v", err)
		return 1
	}
	return 0
}

// tfTarget is one edge and the transform of its route.
type tfTarget struct {
	loadEdge
	key    string // JSON suffix: rps_<key>, ratio_<key>
	what   string // printed description
	target float64
	// transform is the route's transform section (YAML, block style,
	// unindented); "" for plain.
	transform string
	// check judges the edge's answer: its Content-Type and body.
	check func(contentType string, body []byte) error
}

type transformRun struct {
	targets []*tfTarget // plain first
	problemLog
}

// transformOrder is the document as the checks read it.
type transformOrder struct {
	ID       *string `json:"id"`
	Name     string  `json:"name"`
	Customer *struct {
		Name  string  `json:"name"`
		Email *string `json:"email"`
		Phone *string `json:"phone"`
	} `json:"customer"`
	Payment *struct {
		Card *struct {
			Last4       string  `json:"last4"`
			Fingerprint *string `json:"fingerprint"`
		} `json:"card"`
	} `json:"payment"`
	Contact *struct {
		Email string `json:"email"`
	} `json:"contact"`
	OrderID  string            `json:"order_id"`
	Items    []json.RawMessage `json:"items"`
	Internal json.RawMessage   `json:"internal"`
}

// tfSpecs are the five edges, plain first.
func tfSpecs() []*tfTarget {
	return []*tfTarget{
		{
			loadEdge: loadEdge{name: "transform-plain"}, key: "plain", what: "proxy, body untouched",
			check: func(ct string, body []byte) error {
				if err := wantType(ct, "application/json"); err != nil {
					return err
				}
				if !bytes.Equal(body, transformDoc) {
					return fmt.Errorf("body of %d bytes is not the backend's %d", len(body), len(transformDoc))
				}
				return nil
			},
		},
		{
			loadEdge: loadEdge{name: "transform-filter"}, key: "filter", what: "deny 5 paths (nested, items[])", target: transformTargetCheap,
			transform: `response:
  body:
    deny: [customer.email, customer.phone, payment.card.fingerprint, "items[].warehouse", internal]
`,
			check: func(ct string, body []byte) error {
				o, err := decodeOrder(ct, body)
				if err != nil {
					return err
				}
				switch {
				case o.Customer == nil || o.Customer.Name != "Ada Lovelace":
					return errors.New("customer.name lost")
				case o.Customer.Email != nil || o.Customer.Phone != nil:
					return errors.New("customer.email or customer.phone not removed")
				case o.Payment == nil || o.Payment.Card == nil || o.Payment.Card.Last4 != "4242" || o.Payment.Card.Fingerprint != nil:
					return errors.New("payment.card: last4 lost or fingerprint not removed")
				case o.Internal != nil:
					return errors.New("internal not removed")
				case len(o.Items) != transformItems || bytes.Contains(o.Items[0], []byte(`"warehouse"`)):
					return fmt.Errorf("items: %d of %d, or items[].warehouse not removed", len(o.Items), transformItems)
				}
				return nil
			},
		},
		{
			loadEdge: loadEdge{name: "transform-map"}, key: "map", what: "rename, 2 moves (one in items[]), wrap", target: transformTargetCheap,
			transform: `response:
  body:
    map:
      - {op: rename, path: id, key: order_id}
      - {op: move, from: customer.email, to: contact.email}
      - {op: move, from: "items[].price.amount", to: "items[].amount"}
      - {op: wrap, key: data}
`,
			check: func(ct string, body []byte) error {
				if err := wantType(ct, "application/json"); err != nil {
					return err
				}
				var w struct {
					Data *transformOrder `json:"data"`
				}
				if err := json.Unmarshal(body, &w); err != nil {
					return fmt.Errorf("body is not JSON: %v", err)
				}
				o := w.Data
				switch {
				case o == nil:
					return errors.New("no data: not wrapped")
				case o.OrderID != "ord_8f3a2c71" || o.ID != nil:
					return errors.New("id not renamed to order_id")
				case o.Contact == nil || o.Contact.Email != "ada@example.com" || o.Customer == nil || o.Customer.Email != nil:
					return errors.New("customer.email not moved to contact.email")
				case len(o.Items) != transformItems || !bytes.Contains(o.Items[0], []byte(`"amount":"3.50"}`)):
					return errors.New("items[].price.amount not moved to items[].amount")
				}
				return nil
			},
		},
		{
			loadEdge: loadEdge{name: "transform-jq"}, key: "jq", what: "jq {id, name, items: [.items[] | {sku, qty}]}", target: transformTargetHeavy,
			transform: `response:
  body:
    jq: '{id, name, items: [.items[] | {sku, qty}]}'
`,
			check: func(ct string, body []byte) error {
				if err := wantType(ct, "application/json"); err != nil {
					return err
				}
				var o map[string]json.RawMessage
				if err := json.Unmarshal(body, &o); err != nil {
					return fmt.Errorf("body is not JSON: %v", err)
				}
				var items []map[string]any
				_ = json.Unmarshal(o["items"], &items)
				switch {
				case len(o) != 3 || string(o["id"]) != `"ord_8f3a2c71"`:
					return fmt.Errorf("want {id, name, items} with id ord_8f3a2c71, got %.80s", body)
				case len(items) != transformItems || len(items[0]) != 2 || items[0]["sku"] != "SKU-1001" || items[0]["qty"] != 1.0:
					return fmt.Errorf("items: want %d of {sku, qty}, got %.120s", transformItems, o["items"])
				}
				return nil
			},
		},
		{
			loadEdge: loadEdge{name: "transform-xml"}, key: "xml", what: "JSON → XML (to: xml)", target: transformTargetHeavy,
			transform: `response:
  body:
    to: xml
    xml: {root: order}
`,
			check: func(ct string, body []byte) error {
				if err := wantType(ct, "application/xml"); err != nil {
					return err
				}
				var o struct {
					XMLName  xml.Name
					ID       string `xml:"id"`
					Customer struct {
						Email string `xml:"email"`
					} `xml:"customer"`
					Items []struct {
						SKU string `xml:"sku"`
					} `xml:"items"`
				}
				if err := xml.Unmarshal(body, &o); err != nil {
					return fmt.Errorf("body is not XML: %v", err)
				}
				switch {
				case o.XMLName.Local != "order" || o.ID != "ord_8f3a2c71":
					return fmt.Errorf("want <order> with <id>ord_8f3a2c71</id>, got %.80s", body)
				case o.Customer.Email != "ada@example.com" || len(o.Items) != transformItems || o.Items[0].SKU != "SKU-1001":
					return fmt.Errorf("customer or items not converted: %.200s", body)
				}
				return nil
			},
		},
	}
}

// wantType checks a Content-Type's media type.
func wantType(ct, want string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		return fmt.Errorf("Content-Type %q, want %s", ct, want)
	}
	return nil
}

// decodeOrder reads a JSON answer as an order.
func decodeOrder(ct string, body []byte) (*transformOrder, error) {
	if err := wantType(ct, "application/json"); err != nil {
		return nil, err
	}
	var o transformOrder
	if err := json.Unmarshal(body, &o); err != nil {
		return nil, fmt.Errorf("body is not JSON: %v", err)
	}
	return &o, nil
}

func runTransform(ctx context.Context, env *Env) (json.RawMessage, error) {
	o := env.Opts
	if err := ensureApt(ctx, map[string]string{"wrk": "wrk"}); err != nil {
		return nil, err
	}
	bin := filepath.Join(env.Bin, "edge")
	if o.Edge != "" {
		bin = o.Edge
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s not built (make build): %v", bin, err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the backend is this binary: %v", err)
	}

	specs := tfSpecs()
	ports, err := freePorts(1 + 2*len(specs))
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	backendAddr := addr(0)
	var started []*Proc
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Stop()
		}
	}()
	backend, err := env.start("transform-backend", []string{"GOMAXPROCS=1", transformBackendEnv + "=" + backendAddr},
		env.pinned(serverCore, self)...)
	if err != nil {
		return nil, err
	}
	started = append(started, backend)
	if err := waitHTTP(ctx, backend, "http://"+backendAddr+"/", readyWait); err != nil {
		return nil, fmt.Errorf("backend failed to start: %v\n%s", err, indent(backend.LogTail(10)))
	}

	r := &transformRun{problemLog: problemLog{scope: "transform"}}
	for i, t := range specs {
		listen, admin := addr(1+2*i), addr(2+2*i)
		t.url, t.adm = "http://"+listen+"/orders/8f3a2c71", "http://"+admin
		r.targets = append(r.targets, t)
		p, err := env.startEdge(ctx, t.name, bin, transformEdgeConfig(listen, admin, backendAddr, t.transform), t.adm+"/readyz")
		if err != nil {
			return nil, err
		}
		started = append(started, p)
		t.proc = p
	}
	for _, t := range r.targets {
		if err := checkTransform(ctx, t); err != nil {
			t.failed = fmt.Errorf("answer check: %v", err)
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n%s\n", t.name, t.failed, indent(t.proc.LogTail(10)))
		}
	}

	pin := "unpinned"
	if env.Pinned {
		pin = fmt.Sprintf("edges and backend on core %d, wrk on core %d", serverCore, loadCore)
	}
	rounds := pairedRounds(o.Rounds)
	logf("transform: %d rounds of %d pairs (plain, transform edge); wrk -t1 -c50 -d%s per run; warm-up %s; %s",
		rounds, len(r.targets)-1, durArg(o.Duration), o.Warmup, pin)
	edges := make([]*loadEdge, len(r.targets))
	for i, t := range r.targets {
		edges[i] = &t.loadEdge
	}
	env.runPairs(ctx, rounds, edges[0], edges[1:], &r.problemLog)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dir := os.Getenv("BENCH_TRANSFORM_PROFILE"); dir != "" {
		env.profileEdges(ctx, edges, dir)
	}
	for _, t := range r.targets {
		if t.failed != nil {
			r.problem("%s: %v", t.name, firstLines(t.failed.Error()))
		}
	}

	return r.report("transform", func(w io.Writer) { printTransform(w, env, r) }, transformJSON(r))
}

// checkTransform makes sure the edge answers what the measurement assumes:
// 200 and the body its transform should make.
func checkTransform(ctx context.Context, t *tfTarget) error {
	client := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d, want 200: %.200s", resp.StatusCode, body)
	}
	return t.check(resp.Header.Get("Content-Type"), body)
}

// transformEdgeConfig is an edge with one route to the backend, its
// transform section (YAML, unindented) under the route.
func transformEdgeConfig(listen, admin, backend, transform string) string {
	section := ""
	if transform != "" {
		lines := strings.Split(strings.TrimRight(transform, "\n"), "\n")
		section = "    transform:\n      " + strings.Join(lines, "\n      ") + "\n"
	}
	return fmt.Sprintf(`# meshgate edge config of the transform benchmark (written by internal/bench).
log:
  access: "off"
  level: warn
admin:
  address: %s
  pprof: true
listeners:
  - name: http
    address: %s
routes:
  - name: orders
    match:
      path: {prefix: /}
    upstream: backend
%supstreams:
  - name: backend
    protocol: http1
    endpoints:
      - address: %s
`, admin, listen, section, backend)
}

// transformJSON is the suite's fragment: rps_<key> and cpu_us_per_req_<key>
// for every edge, ratio_<key> and target_<key> for every one but plain,
// the document's size, the rounds and the problems.
func transformJSON(r *transformRun) map[string]any {
	out := map[string]any{"body_bytes": len(transformDoc)}
	if r.failed() {
		out["error"] = r.summary()
	}
	rounds := 0
	for i, t := range r.targets {
		if len(t.rps) > 0 {
			out["rps_"+t.key] = round(median(t.rps), 1)
		}
		if len(t.cpuUS) > 0 {
			out["cpu_us_per_req_"+t.key] = round(median(t.cpuUS), 2)
		}
		if i == 0 {
			continue
		}
		out["target_"+t.key] = t.target
		if x, ok := t.ratio(); ok {
			out["ratio_"+t.key] = round(x, 3)
			rounds = max(rounds, len(t.ratios))
		}
	}
	out["rounds"] = rounds
	return out
}

func printTransform(w io.Writer, env *Env, r *transformRun) {
	fmt.Fprintf(w, "transform: medians of %d round(s); req/s from wrk -t1 -c50 -d%s of a %d-byte JSON document; ratio = median over rounds of edge/plain req/s in pairs of alternating slices\n",
		pairedRounds(env.Opts.Rounds), durArg(env.Opts.Duration), len(transformDoc))
	const row = "%-17s %-46s %9s %10s %7s %7s %s\n"
	fmt.Fprintf(w, row, "edge", "route", "req/s", "CPU µs/req", "ratio", "target", "")
	num := func(xs []float64, format string) string {
		if len(xs) == 0 {
			return "-"
		}
		return fmt.Sprintf(format, median(xs))
	}
	plain := r.targets[0]
	for _, t := range r.targets {
		ratio, target, verdict := "-", "-", ""
		if t != plain {
			target = fmt.Sprintf("≥ %g", t.target)
			if x, ok := t.ratio(); ok {
				ratio, verdict = fmt.Sprintf("%.3f", x), "PASS"
				if x < t.target {
					verdict = "MISS"
				}
			}
		}
		fmt.Fprintf(w, row, t.name, t.what, num(t.rps, "%.0f"), num(t.cpuUS, "%.1f"), ratio, target, verdict)
	}
	var failed []string
	for _, t := range r.targets {
		if t.failed != nil {
			failed = append(failed, t.name)
		}
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		fmt.Fprintf(w, "failed: %s\n", strings.Join(failed, ", "))
	}
}
