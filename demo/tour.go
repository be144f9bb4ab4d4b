package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/meshgate/meshgate/internal/meshtest"
)

// Env is what the tour's commands are written against: a running demo's
// addresses, paths and names, as a person types them.
type Env struct {
	Public   string // the edge's public listener
	Admin    string // the edge's admin HTTP listener
	Outbound string // orders' sidecar's outbound listener
	// Meshctl is the meshctl binary as printed (bin/meshctl from the
	// module root); MeshctlEnv are the MESHCTL_*=VALUE of the export line.
	Meshctl    string
	MeshctlEnv []string
	// PaymentsPID is payments' pid file as printed; PaymentsBreaker is the
	// address of payments' sidecar, which names its breakers.
	PaymentsPID     string
	PaymentsBreaker string
	PaymentsMember  string // payments' instance in the cluster
	// Members are the cluster's member names: the edge and every instance.
	Members []string
	// Tracing: the edge traces requests (tap shows their trace ids).
	// Traces is the runner's trace receiver; "": none, and no trace section.
	Tracing bool
	Traces  string
	// Issuer is the runner's token issuer ("": none); APIKey is
	// FreeConsumer's API key. Without both, no consumer section.
	Issuer string
	APIKey string
	// Dir is the directory the printed relative paths start from ("": the
	// current one).
	Dir string
	// Client performs the HTTP examples; nil: a client with a 5 s timeout.
	Client *http.Client
}

// ExportLine is the shell line that gives meshctl its address and identity.
func (env Env) ExportLine() string {
	vars := make([]string, len(env.MeshctlEnv))
	for i, kv := range env.MeshctlEnv {
		k, v, _ := strings.Cut(kv, "=")
		vars[i] = k + "=" + shellQuote(v)
	}
	return "export " + strings.Join(vars, " ")
}

// Section is a numbered part of the tour.
type Section struct {
	Title string
	Steps []Step
}

// Step is one thing to try: the lines to type, in order, and what to see.
// Try performs exactly those lines (HTTP requests with net/http, the rest
// with sh) and checks the expectation, so the banner and the test cannot
// drift apart.
type Step struct {
	Title  string
	Lines  []string
	Expect string
	// HTTP is the request when the step is a curl line.
	HTTP *Example

	try func(ctx context.Context, env Env) error
}

// Try performs the step against env and reports how it misses its
// expectation.
func (s Step) Try(ctx context.Context, env Env) error {
	if err := s.try(ctx, env); err != nil {
		return fmt.Errorf("%s\n  %s\n%w", s.Title, strings.Join(s.Lines, "\n  "), err)
	}
	return nil
}

// Tour is what the banner suggests trying, in order: each step may rely on
// the ones before it (the breaker's section freezes payments and resumes
// it; the transforms need neither payments nor a consumer; the composites
// freeze and resume payments too; the last section stops it for good).
func Tour(env Env) []Section {
	served := map[string][]string{"X-Served-By": {"meshgate"}}
	edgeCaller := `"X-Meshgate-Caller":"` + SpiffeID("edge") + `"`
	payments := Example{Method: "GET", Path: "/payments/p-1",
		Expect: Expect{Status: 200, Body: []string{`"service":"payments"`, `"id":"p-1"`}}}
	meshctl := func(args string) string { return env.Meshctl + " " + args }
	tour := []Section{{
		Title: "Requests through the edge (every hop behind it is SPIFFE mTLS)",
		Steps: []Step{
			httpStep("Path routing: /products/{id} goes to catalog v1; its sidecar passes on the caller's SPIFFE ID", env, Example{
				Method: "GET", Path: "/products/42",
				Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`, `"version":"v1"`, `"id":"42"`, edgeCaller}, Header: served},
			}),
			httpStep("Header routing: the same path with X-Api-Version: 2 goes to catalog v2", env, Example{
				Method: "GET", Path: "/products/42", Headers: [][2]string{{"X-Api-Version", "2"}},
				Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`, `"version":"v2"`, `"stock":`}, Header: served},
			}),
			httpStep(`Load balancing: round robin over the two catalog v1 sidecars; watch "instance" alternate`, env, Example{
				Method: "GET", Path: "/products/1", Repeat: 4,
				Expect: Expect{Status: 200, Body: []string{`"version":"v1"`}, Varies: "instance", VariesMin: 2},
			}),
			httpStep("Prefix routing with a rewrite, and a rate limit counted across the cluster", env, Example{
				Method: "GET", Path: "/api/products/7",
				Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`, `"path":"/products/7"`},
					Header: map[string][]string{"X-Served-By": {"meshgate"}, "RateLimit-Limit": {"600"}}},
			}),
			httpStep("East-west: edge → orders (v1 or v2) → its sidecar → payments, which saw orders' SPIFFE ID", env, Example{
				Method: "POST", Path: "/orders",
				Headers: [][2]string{{"Content-Type", "application/json"}},
				Body:    `{"item":"book","qty":2}`,
				Expect: Expect{Status: 201, Body: []string{`"service":"orders"`, `"item":"book"`, `"id":"ord-`, `"status":"captured"`,
					`"caller":"` + SpiffeID("orders") + `"`}, Header: served},
			}),
			httpStep("Method routing: any other method on /orders is 405, with Allow", env, Example{
				Method: "DELETE", Path: "/orders",
				Expect: Expect{Status: 405, Header: map[string][]string{"Allow": {"GET", "POST"}}},
			}),
			grpcStep(env),
			httpStep("Allow lists: call catalog through orders' sidecar, as orders' app would: catalog admits only the edge", env, Example{
				Via: ViaOutbound, Method: "GET", Path: "/products/1", Headers: [][2]string{{"Host", "catalog"}},
				Expect: Expect{Status: 403, Body: []string{SpiffeID("orders") + " may not call"}},
			}),
			httpStep("Metrics: the edge's breakers among its Prometheus metrics (0 closed, 1 half-open, 2 open)", env, Example{
				Via: ViaAdmin, Method: "GET", Path: "/metrics", Grep: "meshgate_breaker_state",
				Expect: Expect{Status: 200},
			}),
		},
	}, {
		Title: "The cluster, through the edge's admin API (run the export line first)",
		Steps: []Step{
			shellStep("Members: the edge and a sidecar per service instance, each with its SPIFFE ID", meshctl("members"),
				fmt.Sprintf("%d members, all alive; every sidecar APP HEALTHY true", len(env.Members)), 0, membersCheck(env, "")),
		},
	}, {
		Title: "Canary: shift 10% of the orders route to subset v2",
		Steps: []Step{
			shellStep("", meshctl("traffic shift orders --to v2 --weight 10"), "orders v1 90%, orders v2 10%", 0, splitCheck("v1", "90%", "v2", "10%")),
			shellStep("", meshctl("traffic show orders"), "the same split, read back from the edge", 0, splitCheck("v1", "90%", "v2", "10%")),
			within(httpStep("Ten requests to /orders: exactly one reaches v2", env, Example{
				Method: "GET", Path: "/orders", Repeat: 10, Count: "version",
				Expect: Expect{Status: 200, Counts: map[string]int{"v1": 9, "v2": 1}},
			}), 5*time.Second),
		},
	}, tapSection(env)}
	if env.Issuer != "" && env.APIKey != "" {
		tour = append(tour, consumerSection(env))
	}
	if env.Traces != "" {
		tour = append(tour, traceSection(env))
	}
	return append(tour, Section{
		Title: "Circuit breaker: freeze payments (kill -STOP: its port still accepts connections, so discovery keeps it)",
		Steps: []Step{
			httpStep("First, payment-status once: its route caches payments' answer for 2 s (and keeps it an hour for its fallback)", env, Example{
				Method: "GET", Path: "/status/payments/p-1",
				Expect: Expect{Status: 200, Body: []string{`"service":"payments"`, `"id":"p-1"`},
					Header: map[string][]string{"Cache-Status": {"meshgate; fwd=uri-miss; fwd-status=200; stored"}}},
			}),
			shellStep("", "kill -STOP $(cat "+shellQuote(env.PaymentsPID)+")", "", 0, nil),
			httpStep(`Three 1 s timeouts in a row open the edge's breaker; then it answers 503 "circuit open" at once`, env, Example{
				Method: "GET", Path: "/payments/p-1", Repeat: 5, Codes: true,
				Expect: Expect{Statuses: []int{504, 504, 504, 503, 503}, LastBody: []string{"circuit open"}},
			}),
			shellStep("", meshctl("breakers list"), env.PaymentsBreaker+" (payments' sidecar) open, cause local", 0,
				breakerCheck(env.PaymentsBreaker, "open", "local")),
			httpStep("The route payment-status has a fallback: while payments cannot answer, the edge answers in its place, "+
				"first with the copy it cached, stale (ttl below 0), the failure in fwd-status "+
				"(routes[].fallback.stale; fallback=stale in the access log, counted in meshgate_fallbacks_total)", env, Example{
				Method: "GET", Path: "/status/payments/p-1",
				Expect: Expect{Status: 200, Body: []string{`"service":"payments"`, `"id":"p-1"`},
					Header: map[string][]string{"Cache-Status": {"meshgate; fwd=stale; fwd-status=503; ttl=-…"}}},
			}),
			httpStep("A payment it never cached gets the fallback's static response (fallback=response)", env, Example{
				Method: "GET", Path: "/status/payments/p-2",
				Expect: Expect{Status: 503, Body: []string{`"degraded":true`, `"request_id":"`},
					Header: map[string][]string{"Retry-After": {"30"}, "Cache-Control": {"no-store"}}},
			}),
			shellStep("Resume payments and close the breaker on every node (or wait 30 s: a probe closes it)",
				"kill -CONT $(cat "+shellQuote(env.PaymentsPID)+") && "+meshctl("breakers reset "+env.PaymentsBreaker),
				"breaker of "+env.PaymentsBreaker+" reset on every node", 0, contains("reset on every node")),
			within(httpStep("", env, payments), 2*time.Second),
			httpStep("payment-status answers from payments again", env, Example{Method: "GET", Path: "/status/payments/p-1",
				Expect: Expect{Status: 200, Body: []string{`"service":"payments"`, `"id":"p-1"`}, NoBody: []string{"degraded"}}}),
		},
	}, transformSection(env), cacheSection(env), compositeSection(env), Section{
		Title: "Stop payments for good: its sidecar checks the app every 2 s and withdraws it from discovery",
		Steps: []Step{
			shellStep("", "kill $(cat "+shellQuote(env.PaymentsPID)+")", "", 0, nil),
			within(httpStep("Within about 2 s; until then its sidecar answers 502 (three of which open the breaker again)", env, Example{
				Method: "GET", Path: "/payments/p-1",
				Expect: Expect{Status: 503, Body: []string{"no healthy upstream endpoint"}},
			}), 6*time.Second),
			shellStep("", meshctl("members"), env.PaymentsMember+" APP HEALTHY false", 3*time.Second, membersCheck(env, env.PaymentsMember)),
		},
	}, Section{
		Title: "Beyond this machine: meshctl inject writes a service's sidecar for a VM (--systemd) or a Kubernetes workload (-f app.yaml; examples in demo/k8s)",
		Steps: []Step{
			shellStep("", meshctl("inject --systemd --service orders --app-port 8080 --address 10.0.0.7"),
				"a systemd unit meshgate-sidecar-orders.service and its sidecar config, validated as the sidecar would", 0,
				contains("meshgate-sidecar-orders.service")),
		},
	})
}

// Examples are the tour's HTTP requests, in order.
func Examples(env Env) []Example {
	var out []Example
	for _, sec := range Tour(env) {
		for _, s := range sec.Steps {
			if s.HTTP != nil {
				out = append(out, *s.HTTP)
			}
		}
	}
	return out
}

func (env Env) client() *http.Client {
	if env.Client != nil {
		return env.Client
	}
	return &http.Client{Timeout: 5 * time.Second}
}

func httpStep(title string, env Env, ex Example) Step {
	return Step{Title: title, Lines: []string{ex.Curl(env)}, Expect: ex.Describe(), HTTP: &ex,
		try: func(ctx context.Context, env Env) error {
			rs, err := ex.Do(ctx, env.client(), env)
			if err != nil {
				return err
			}
			return ex.Check(rs)
		}}
}

// shellStep is a command line run with sh, meshctl's exports set; check
// (nil: none) judges its output. A command that fails fails the step.
func shellStep(title, line, expect string, d time.Duration, check func(out string) error) Step {
	return within(Step{Title: title, Lines: []string{line}, Expect: expect,
		try: func(ctx context.Context, env Env) error {
			out, err := runShell(ctx, env, line)
			if err != nil {
				return fmt.Errorf("%v\n%s", err, out)
			}
			if check != nil {
				if err := check(out); err != nil {
					return fmt.Errorf("%v\n--- output ---\n%s", err, out)
				}
			}
			return nil
		}}, d)
}

// within makes the step's check an eventual one: it is tried again every
// 100 ms until it passes or d is over.
func within(s Step, d time.Duration) Step {
	if d <= 0 {
		return s
	}
	once := s.try
	s.try = func(ctx context.Context, env Env) error {
		return eventually(ctx, d, func() error { return once(ctx, env) })
	}
	return s
}

func eventually(ctx context.Context, d time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still after %s: %w", d, err)
		case <-tick.C:
		}
	}
}

// shellCommand is sh -c line, in env.Dir, with meshctl's exports.
func shellCommand(ctx context.Context, env Env, line string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = env.Dir
	cmd.Env = append(os.Environ(), env.MeshctlEnv...)
	cmd.WaitDelay = time.Second
	return cmd
}

func runShell(ctx context.Context, env Env, line string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := shellCommand(ctx, env, line).CombinedOutput()
	return string(out), err
}

func contains(sub string) func(string) error {
	return func(out string) error {
		if !strings.Contains(out, sub) {
			return fmt.Errorf("the output lacks %q", sub)
		}
		return nil
	}
}

// table splits a meshctl table into rows of fields, header first.
func table(out string) [][]string {
	var rows [][]string
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// membersCheck wants every member alive and every sidecar healthy, but
// the one named unhealthy ("" for none), which must be unhealthy.
func membersCheck(env Env, unhealthy string) func(string) error {
	return func(out string) error {
		byName := map[string][]string{}
		for _, r := range table(out) {
			if len(r) >= 7 {
				byName[r[0]] = r // NAME STATE ROLE SERVICE SUBSET INBOUND APP-HEALTHY SPIFFE-ID (the header has one more field)
			}
		}
		var errs []error
		for _, name := range env.Members {
			r, ok := byName[name]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("no member %s", name))
			case r[1] != "alive":
				errs = append(errs, fmt.Errorf("%s is %s, want alive", name, r[1]))
			case r[2] == "sidecar" && (r[6] == "true") != (name != unhealthy):
				errs = append(errs, fmt.Errorf("%s APP HEALTHY %s", name, r[6]))
			}
		}
		if len(byName) != len(env.Members)+1 { // and the header
			errs = append(errs, fmt.Errorf("%d members, want %d", len(byName)-1, len(env.Members)))
		}
		return errors.Join(errs...)
	}
}

// splitCheck wants the route's split to give each subset its weight:
// splitCheck("v1", "90%", "v2", "10%").
func splitCheck(subsetWeights ...string) func(string) error {
	return func(out string) error {
		got := map[string]string{}
		for _, r := range table(out)[1:] {
			if len(r) == 5 { // ROUTE SERVICE SUBSET UPSTREAM WEIGHT
				got[r[2]] = r[4]
			}
		}
		for i := 0; i+1 < len(subsetWeights); i += 2 {
			if got[subsetWeights[i]] != subsetWeights[i+1] {
				return fmt.Errorf("subset %s has %q, want %s", subsetWeights[i], got[subsetWeights[i]], subsetWeights[i+1])
			}
		}
		return nil
	}
}

// breakerCheck wants the endpoint's breaker in state, for cause.
func breakerCheck(endpoint, state, cause string) func(string) error {
	return func(out string) error {
		for _, r := range table(out) {
			if len(r) >= 4 && r[0] == endpoint { // ENDPOINT STATE LOCAL CAUSE …
				if r[1] != state || r[3] != cause {
					return fmt.Errorf("breaker of %s is %s (cause %s), want %s (cause %s)", endpoint, r[1], r[3], state, cause)
				}
				return nil
			}
		}
		return fmt.Errorf("no breaker for %s", endpoint)
	}
}

// grpcStep calls payments' gRPC health service through the edge. It is
// printed as grpcurl (which finds the method through payments' server
// reflection) and performed with grpc-go: the health check, and the
// reflection lookup grpcurl makes first.
func grpcStep(env Env) Step {
	return Step{
		Title:  "gRPC through the edge (HTTP/2 end to end): payments' health service, with grpcurl if you have it",
		Lines:  []string{"grpcurl -plaintext " + env.Public + " grpc.health.v1.Health/Check"},
		Expect: `{ "status": "SERVING" }`,
		try: func(ctx context.Context, env Env) error {
			conn, err := grpc.NewClient(env.Public, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
			if err != nil {
				return fmt.Errorf("reflection: %w", err)
			}
			if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
				FileContainingSymbol: "grpc.health.v1.Health"}}); err != nil {
				return fmt.Errorf("reflection: %w", err)
			}
			r, err := stream.Recv()
			if err != nil {
				return fmt.Errorf("reflection: %w", err)
			}
			if len(r.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
				return fmt.Errorf("reflection does not describe grpc.health.v1.Health: %v", r)
			}
			stream.CloseSend()
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			if resp.Status != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("status %s, want SERVING", resp.Status)
			}
			return nil
		},
	}
}

// tapSection streams five requests with meshctl tap while curling them.
func tapSection(env Env) Section {
	tapLine := env.Meshctl + " tap --count 5"
	req := Example{Method: "GET", Path: "/products/7", Repeat: 5, Quiet: true, Expect: Expect{Status: 200}}
	trace := "- /products/7 (-: no trace id, the edge does not trace)"
	if env.Tracing {
		trace = "TRACE-ID /products/7 (a new trace per request, 32 hex digits"
		if env.Traces != "" {
			trace += ": look one up at http://" + env.Traces + "/traces/TRACE-ID"
		}
		trace += ")"
	}
	return Section{
		Title: "Tap: watch live requests through the edge",
		Steps: []Step{{
			Title:  "In a second terminal (after the export line), then here",
			Lines:  []string{tapLine, req.Curl(env)},
			Expect: "tap prints 5 lines: TIME products GET 200 LATENCY catalog SIDECAR " + trace + ", then exits",
			HTTP:   &req,
			try: func(ctx context.Context, env Env) error {
				once := req
				once.Repeat = 1
				return tapUntil(ctx, env, tapLine, []Example{once}, func(out string) error { return tapCheck(out, env.Tracing) })
			},
		}},
	}
}

// tapCheck wants five lines of GET /products/7, each with a trace id when
// the edge traces, else "-".
func tapCheck(out string, tracing bool) error {
	n := 0
	traces := map[string]bool{}
	for _, r := range table(out) {
		// TIME ROUTE METHOD STATUS LATENCY UPSTREAM ENDPOINT TRACE PATH
		if len(r) == 9 && r[1] == "products" && r[2] == "GET" && r[3] == "200" && r[5] == "catalog" && r[8] == "/products/7" &&
			(tracing && isTraceID(r[7]) || !tracing && r[7] == "-") {
			n++
			traces[r[7]] = true
		}
	}
	what := "no trace id (-)"
	if tracing {
		what = "a trace id (32 hex digits)"
	}
	if n != 5 {
		return fmt.Errorf("%d tapped lines of GET /products/7 with %s, want 5\n%s", n, what, out)
	}
	if tracing && len(traces) != 5 {
		return fmt.Errorf("5 requests in %d traces, want one each\n%s", len(traces), out)
	}
	return nil
}

// The consumers of demo/edge.yaml: FreeConsumer has an API key the runner
// makes at start, PaidConsumer is known by its JWTs' sub.
const (
	FreeConsumer = "free-app"
	PaidConsumer = "paid-app"
)

// consumerSection calls the partner route, which takes a JWT of the
// runner's issuer or an API key: without a credential, as free-app until
// its tier refuses, as paid-app, and taps free-app's requests.
func consumerSection(env Env) Section {
	const path = "/partner/products/7"
	key := [][2]string{{"X-Api-Key", env.APIKey}}
	freePolicy, paidPolicy := `"free-1m";q=5;w=60`, `"paid-1m";q=10000;w=60`
	free := Example{Method: "GET", Path: path, Headers: key, Quiet: true}
	paid := Example{Method: "GET", Path: path, Token: PaidConsumer, Quiet: true, Expect: Expect{Status: 200}}
	tapLine := env.Meshctl + " tap --consumer " + FreeConsumer + " --count 1 -o json"
	tap := Step{
		Title:  "Tap one consumer's requests: in a second terminal (after the export line), then here, paid-app then free-app",
		Lines:  []string{tapLine, paid.Curl(env), free.Curl(env)},
		Expect: `tap prints free-app's request only, as JSON ("route": "partner", "status": 429 while free-app's minute lasts, "consumer": "free-app"), then exits`,
		try: func(ctx context.Context, env Env) error {
			return tapUntil(ctx, env, tapLine, []Example{paid, free}, func(out string) error { return consumerTapCheck(out, FreeConsumer) })
		},
	}
	return Section{
		Title: "Consumers: /partner takes a JWT of this runner's issuer or an API key; each consumer's tier limits it across the cluster",
		Steps: []Step{
			httpStep("No credential: 401, and WWW-Authenticate names both schemes", env, Example{
				Method: "GET", Path: path,
				Expect: Expect{Status: 401, Header: map[string][]string{"WWW-Authenticate": {`Bearer realm="meshgate"`, `ApiKey realm="meshgate"`, `header="X-Api-Key"`}}},
			}),
			httpStep("free-app's API key: its tier's RateLimit headers; catalog learns the consumer and tier from the edge", env, Example{
				Method: "GET", Path: path, Headers: key,
				Expect: Expect{Status: 200,
					Body:   []string{`"path":"/products/7"`, `"X-Meshgate-Consumer":"free-app"`, `"X-Meshgate-Tier":"free"`},
					Header: map[string][]string{"RateLimit-Policy": {freePolicy}, "RateLimit": {`"free-1m";r=4;t=…`}}},
			}),
			httpStep("Tier free allows 5 requests a minute: the sixth is refused", env, Example{
				Method: "GET", Path: path, Headers: key, Repeat: 5, Codes: true,
				Expect: Expect{Statuses: []int{200, 200, 200, 200, 429}},
			}),
			httpStep("The refusal says why, and when to come back (r: requests left, t: seconds until the window frees one)", env, Example{
				Method: "GET", Path: path, Headers: key,
				Expect: Expect{Status: 429, Body: []string{"rate limited: tier free allows 5 requests per 1m"},
					Header: map[string][]string{"Retry-After": {"…"}, "RateLimit-Policy": {freePolicy}, "RateLimit": {`"free-1m";r=0;t=…`}}},
			}),
			httpStep("paid-app's JWT, minted by this runner's issuer: tier paid, counted apart from free-app", env, Example{
				Method: "GET", Path: path, Token: PaidConsumer,
				Expect: Expect{Status: 200,
					Body:   []string{`"X-Meshgate-Consumer":"paid-app"`, `"X-Meshgate-Tier":"paid"`},
					Header: map[string][]string{"RateLimit-Policy": {paidPolicy}, "RateLimit": {`"paid-1m";r=9999;t=…`}}},
			}),
			tap,
		},
	}
}

// tapUntil runs the tap line and sends the examples, in turn and over
// again, until the tap exits (it has seen its --count), then checks its
// output. Each example with an expected status must meet its expectation.
func tapUntil(ctx context.Context, env Env, tapLine string, exs []Example, check func(string) error) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var out meshtest.SyncBuffer
	cmd := shellCommand(ctx, env, tapLine)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The tap sees requests from when its stream is open: keep sending
	// until it has had its count.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("%v\n%s", err, out.String())
			}
			return check(out.String())
		case <-tick.C:
			for _, ex := range exs {
				rs, err := ex.Do(ctx, env.client(), env)
				if err == nil && (ex.Expect.Status != 0 || len(ex.Expect.Statuses) > 0) {
					err = ex.Check(rs)
				}
				if err != nil {
					return err
				}
			}
		}
	}
}

// consumerTapCheck wants one tapped request, as JSON, of consumer on the
// partner route: admitted or refused by its tier.
func consumerTapCheck(out, consumer string) error {
	var ev struct {
		Route    string `json:"route"`
		Status   int    `json:"status"`
		Consumer string `json:"consumer"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		return fmt.Errorf("tap -o json did not print one JSON object: %v\n%s", err, out)
	}
	if ev.Route != "partner" || ev.Consumer != consumer || ev.Status != http.StatusOK && ev.Status != http.StatusTooManyRequests {
		return fmt.Errorf("tapped route %q, consumer %q, status %d; want route partner, consumer %s, status 429 (or 200 once its window frees)\n%s",
			ev.Route, ev.Consumer, ev.Status, consumer, out)
	}
	return nil
}

// transformSection shows the edge reshaping bodies (routes[].transform): a
// legacy client's order mapped to what orders takes today, with orders'
// internal cost hidden from its answer; catalog's XML served as JSON; and
// catalog's JSON served as XML to a client that asks for it. It needs
// neither payments nor a consumer.
func transformSection(env Env) Section {
	jsonType := map[string][]string{"Content-Type": {"application/json"}}
	return Section{
		Title: "Transforms: the edge reshapes bodies on the way through (routes[].transform in docs/config.md)",
		Steps: []Step{
			httpStep("A legacy client's order in the old format: the edge renames, moves and wraps it into what orders takes today "+
				"(orders shows what it received; it refuses the old format), and hides orders' internal cost in the answer", env, Example{
				Method: "POST", Path: "/legacy/orders",
				Headers: [][2]string{{"Content-Type", "application/json"}},
				Body:    `{"customer_id":7,"line_items":[{"sku":"A1","quantity":2}]}`,
				Expect: Expect{Status: 200,
					Body: []string{`"service":"orders"`, `"X-Api-Version":"legacy"`,
						`"received":{"order":{"items":[{"sku":"A1","qty":2}],"customer":{"id":7}}}`, `"total":19.98`},
					NoBody: []string{"internal_cost"}, Header: jsonType},
			}),
			httpStep("A body that is not JSON is refused by the edge: orders never sees it", env, Example{
				Method: "POST", Path: "/legacy/orders", Body: "customer_id=7",
				Expect: Expect{Status: 400, Body: []string{"invalid request body"}},
			}),
			httpStep(`XML to JSON: catalog's XML API (<product id="42"><name>…) as JSON; attributes become "-name" members, product.tag an array`, env, Example{
				Method: "GET", Path: "/feed/products/42",
				Expect: Expect{Status: 200, Header: jsonType,
					Body: []string{`{"product":{"-id":"42","name":"Product 42","price":"42.99","tag":["demo"]}}`}},
			}),
			httpStep("JSON to XML for a client that asks for it: catalog's product alone, as XML", env, Example{
				Method: "GET", Path: "/shop/products/42", Headers: [][2]string{{"Accept", "application/xml"}},
				Expect: Expect{Status: 200, Header: map[string][]string{"Content-Type": {"application/xml"}, "Vary": {"Accept"}},
					Body: []string{`<product><id>42</id><name>Product 42</name><price>42.99</price></product>`}},
			}),
			httpStep("The same without Accept (or preferring JSON): JSON", env, Example{
				Method: "GET", Path: "/shop/products/42",
				Expect: Expect{Status: 200, Header: map[string][]string{"Content-Type": {"application/json"}, "Vary": {"Accept"}},
					Body: []string{`{"id":"42","name":"Product 42","price":42.99}`}},
			}),
		},
	}
}

// cacheSection shows the edge's shared cache on the route products-cached.
func cacheSection(env Env) Section {
	meshctl := func(args string) string { return env.Meshctl + " " + args }
	return Section{
		Title: "Cache: the edge answers repeated reads itself (routes[].cache and cache in docs/config.md)",
		Steps: []Step{
			httpStep("The first request is a miss: it goes to catalog, and the answer is stored (Cache-Status, RFC 9211)", env, Example{
				Method: "GET", Path: "/cached/products/7",
				Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`, `"path":"/products/7"`},
					Header: map[string][]string{"Cache-Status": {"meshgate; fwd=uri-miss; fwd-status=200; stored"}}},
			}),
			httpStep("The same request again is a hit: answered by the edge, with its Age and the seconds of freshness left", env, Example{
				Method: "GET", Path: "/cached/products/7",
				Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`, `"path":"/products/7"`},
					Header: map[string][]string{"Cache-Status": {"meshgate; hit; ttl=…"}, "Age": {"…"}}},
			}),
			shellStep("The cache's figures per route, on the node meshctl talks to", meshctl("cache stats products-cached"),
				"products-cached: 1 entry, 1 hit, 1 miss", 0, cacheStatsCheck("products-cached", "1", "1", "1")),
			shellStep("Purge it from every edge of the cluster (within a second)", meshctl("cache purge products-cached --path /cached/products/7"),
				"purge … of route products-cached (path /cached/products/7) sent to every node; 1 entry removed", 0,
				contains("1 entry removed")),
			httpStep("The next request is a miss again", env, Example{
				Method: "GET", Path: "/cached/products/7",
				Expect: Expect{Status: 200, Body: []string{`"service":"catalog"`},
					Header: map[string][]string{"Cache-Status": {"meshgate; fwd=uri-miss; fwd-status=200; stored"}}},
			}),
		},
	}
}

// cacheStatsCheck wants route's row of meshctl cache stats with these
// entries, hits and misses.
func cacheStatsCheck(route, entries, hits, misses string) func(string) error {
	return func(out string) error {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 5 && f[0] == route {
				if f[1] != entries || f[3] != hits || f[4] != misses {
					return fmt.Errorf("%s: entries %s, hits %s, misses %s; want %s, %s, %s\n%s", route, f[1], f[3], f[4], entries, hits, misses, out)
				}
				return nil
			}
		}
		return fmt.Errorf("no row for %s\n%s", route, out)
	}
}

// The trace context of the tour's traced order: traceparent
// 00-TourTraceID-TourParentID-01 (the example of the W3C specification),
// as a client that traces would send it.
const (
	TourTraceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	TourParentID = "00f067aa0ba902b7"
)

// traceSection sends an order with a trace context and reads its trace
// back from the runner's receiver.
func traceSection(env Env) Section {
	order := Example{Method: "POST", Path: "/orders",
		Headers: [][2]string{{"Content-Type", "application/json"}, {"traceparent", "00-" + TourTraceID + "-" + TourParentID + "-01"}},
		Body:    `{"item":"pen","qty":1}`,
		Expect:  Expect{Status: 201, Body: []string{`"service":"orders"`, `"status":"captured"`}},
	}
	show := traceStep(env, "The trace as a tree, parent → children (nodes export their spans within about a second); ?format=json for the spans",
		TourTraceID, "8 spans, each the child of the one above: the edge's server span (its parent "+TourParentID+", the curl's) and client span → "+
			"orders' sidecar inbound (server, caller "+SpiffeID("edge")+"; client to its app) → "+
			"its outbound (server, as the app passed traceparent on; client to payments) → "+
			"payments' sidecar inbound (server, caller "+SpiffeID("orders")+"; client to its app); all 201",
		traceCheck)
	return Section{
		Title: "One trace from the client to the last service: every node exports its spans to this runner",
		Steps: []Step{
			httpStep("An order that carries a W3C trace context: traceparent is version-trace id-the client's span id-flags (01: sampled)", env, order),
			within(show, 8*time.Second),
		},
	}
}

// traceHop is a span the tour's trace must hold: a line of the tree.
type traceHop struct {
	service, node, kind, name, caller string
}

// traceCheck wants the tree of the tour's order: one chain of 8 spans,
// each the child of the line above, from the edge's server span, whose
// parent is the client's span, to payments' sidecar's call to its app.
func traceCheck(tree string) error {
	orders := "orders-v*" // v1, or v2 after the canary
	want := []traceHop{
		{"meshgate-edge", "edge", "server", "POST orders", ""},
		{"meshgate-edge", "edge", "client", "POST orders*", ""}, // the upstream: orders, or orders-v1/-v2 after a shift
		{"meshgate-sidecar", orders, "server", "POST inbound", SpiffeID("edge")},
		{"meshgate-sidecar", orders, "client", "POST local-app", ""},
		{"meshgate-sidecar", orders, "server", "POST outbound-payments", ""},
		{"meshgate-sidecar", orders, "client", "POST payments", ""},
		{"meshgate-sidecar", "payments-v1", "server", "POST inbound", SpiffeID("orders")},
		{"meshgate-sidecar", "payments-v1", "client", "POST local-app", ""},
	}
	header, rows, err := parseTree(tree)
	if err != nil {
		return err
	}
	if wantHeader := fmt.Sprintf("trace %s: %d spans", TourTraceID, len(want)); header != wantHeader {
		return fmt.Errorf("first line %q, want %q", header, wantHeader)
	}
	if len(rows) != len(want) {
		return fmt.Errorf("%d lines of spans, want %d", len(rows), len(want))
	}
	ordersNode := ""
	for i, l := range rows {
		if l.depth != i {
			return fmt.Errorf("line %d is at depth %d, want %d (the child of the line above)", i+1, l.depth, i)
		}
		w := want[i]
		var errs []string
		who := w.service + " (" + w.node + ")"
		if !match(who, l.who) {
			errs = append(errs, fmt.Sprintf("node %q, want %s", l.who, who))
		}
		if w.node == orders {
			if ordersNode == "" {
				ordersNode = l.who
			} else if l.who != ordersNode {
				errs = append(errs, fmt.Sprintf("node %q, want %s as above", l.who, ordersNode))
			}
		}
		if l.kind != w.kind || !match(w.name, l.name) {
			errs = append(errs, fmt.Sprintf("%s span %q, want a %s span %q", l.kind, l.name, w.kind, w.name))
		}
		if l.status != "201" {
			errs = append(errs, fmt.Sprintf("status %s, want 201", l.status))
		}
		if caller := l.caller(); caller != w.caller {
			errs = append(errs, fmt.Sprintf("caller %q, want %q", caller, w.caller))
		}
		if i == 0 && !slices.Contains(l.rest, "parent "+TourParentID+" (not here: the caller's, or not exported yet)") {
			errs = append(errs, "the root's parent is not "+TourParentID+", the curl's span")
		}
		if len(errs) > 0 {
			return fmt.Errorf("line %d: %s", i+1, strings.Join(errs, "; "))
		}
	}
	return nil
}

// match reports whether s is pattern, where one * stands for any run of
// characters.
func match(pattern, s string) bool {
	if before, after, ok := strings.Cut(pattern, "*"); ok {
		return strings.HasPrefix(s, before) && strings.HasSuffix(s, after) && len(s) >= len(before)+len(after)
	}
	return s == pattern
}

// traceStep shows the runner's tree of trace id and checks it with check
// (which gets the tree as text).
func traceStep(env Env, title, id, expect string, check func(tree string) error) Step {
	tree := Example{Via: ViaTraces, Method: "GET", Path: "/traces/" + id, BodyOnly: true, Expect: Expect{Status: 200}}
	return Step{
		Title:  title,
		Lines:  []string{tree.Curl(env)},
		Expect: expect,
		HTTP:   &tree,
		try: func(ctx context.Context, env Env) error {
			rs, err := tree.Do(ctx, env.client(), env)
			if err != nil {
				return err
			}
			if err := tree.Check(rs); err != nil {
				return err
			}
			if err := check(string(rs[0].Body)); err != nil {
				return fmt.Errorf("%v\n--- the tree ---\n%s", err, rs[0].Body)
			}
			return nil
		},
	}
}
