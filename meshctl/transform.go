package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc"

	"github.com/meshgate/meshgate/internal/config"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// maxSample bounds a sample's body: the admin API's bound too
// (admin.MaxTransformSample; a test checks they agree).
const maxSample = 4 << 20

// maxTransformAnswer is what meshctl takes back from a TransformTest: a
// body of up to maxSample and its headers.
const maxTransformAnswer = 16 << 20

// fieldList is a repeatable flag whose values are kept whole (urfave/cli's
// string slices split on commas, which header values have). It is a
// cli.Serializer: urfave/cli copies a flag given by one name to its
// aliases by setting the serialized value, which replaces the list.
type fieldList struct{ values []string }

const fieldListPrefix = "\x00fields:"

func (l *fieldList) Set(v string) error {
	if rest, ok := strings.CutPrefix(v, fieldListPrefix); ok {
		l.values = nil
		return json.Unmarshal([]byte(rest), &l.values)
	}
	l.values = append(l.values, v)
	return nil
}

func (l *fieldList) String() string { return strings.Join(l.values, "; ") }

func (l *fieldList) Serialize() string {
	b, _ := json.Marshal(l.values)
	return fieldListPrefix + string(b)
}

func fieldsOf(c *cli.Context, name string) []string {
	if l, ok := c.Generic(name).(*fieldList); ok && l != nil {
		return l.values
	}
	return nil
}

func transformCommand() *cli.Command {
	return &cli.Command{
		Name: "transform", Usage: "routes' transforms",
		Subcommands: []*cli.Command{{
			Name: "test", ArgsUsage: "ROUTE", BashComplete: completeNames(resourceNames(config.KindRoute)),
			Usage: "dry-run a route's transform on a sample: the request as it would be forwarded, or with --response the response as the client would get it (no upstream is called)",
			Description: "The node builds the route's transform from its effective configuration, or from --route-file\n" +
				"(a routes[] entry, checked as `routes apply` would) to try a change before applying it.\n" +
				"-f is the sample's body: the client's request's, or with --response the upstream's; its\n" +
				"Content-Type is the one given with -H, else the file's extension's (.json, .xml). An error\n" +
				"(an invalid sample) is printed as the gateway would answer it, and meshctl exits 1.",
			Flags: append(connFlags(),
				&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the sample's body (`FILE`, - for stdin; at most 4 MiB)"},
				&cli.StringFlag{Name: "route-file", Usage: "try this route (`YAML`, a routes[] entry) instead of the node's"},
				&cli.BoolFlag{Name: "response", Usage: "run the response side: the sample is the upstream's answer"},
				&cli.IntFlag{Name: "status", Usage: "with --response: the upstream's status (default 200)"},
				&cli.GenericFlag{Name: "header", Aliases: []string{"H"}, Value: &fieldList{},
					Usage: "a header of the sample (`'Name: value'`, repeatable): the request's, or with --response the upstream's"},
				&cli.GenericFlag{Name: "request-header", Value: &fieldList{},
					Usage: "with --response: a header of the request answered (`'Name: value'`, repeatable)"},
				&cli.StringFlag{Name: "method", Aliases: []string{"X"}, Usage: "the request's method (default POST with a body, else GET)"},
				&cli.StringFlag{Name: "path", Usage: "the request's `PATH?QUERY` (default the route's exact path or prefix)"},
				&cli.StringFlag{Name: "host", Usage: "the request's Host (default the route's first host)"},
				&cli.StringFlag{Name: "consumer", Usage: "as if the route's auth had identified this consumer"},
				&cli.GenericFlag{Name: "claim", Value: &fieldList{}, Usage: "a claim of the consumer's token (`NAME=VALUE`, repeatable)"},
			),
			Action: withSession(transformTest),
		}},
	}
}

func transformTest(c *cli.Context, s *session) error {
	if c.NArg() > 1 || c.NArg() == 0 && c.String("route-file") == "" {
		return errors.New("usage: meshctl transform test ROUTE -f SAMPLE [--response] [--status N] [-H 'Name: value']... (or --route-file route.yaml)")
	}
	resp := c.Bool("response")
	if !resp && (c.IsSet("status") || len(fieldsOf(c, "request-header")) > 0) {
		return errors.New("--status and --request-header describe the upstream's answer: they go with --response")
	}
	req := &adminv1.TransformTestRequest{Route: c.Args().First(), Response: resp, Status: int32(c.Int("status")),
		Method: c.String("method"), Path: c.String("path"), Host: c.String("host"), Consumer: c.String("consumer")}
	if path := c.String("route-file"); path != "" {
		data, err := readBounded(path, 1<<20)
		if err != nil {
			return err
		}
		if err := checkFile(config.KindRoute, path, data); err != nil {
			return err
		}
		req.RouteYaml = string(data)
	}
	sample, err := parseFields(fieldsOf(c, "header"))
	if err != nil {
		return err
	}
	if path := c.String("file"); path != "" {
		if req.Body, err = readBounded(path, maxSample); err != nil {
			return err
		}
		if ct := typeOf(path); ct != "" && !hasField(sample, "Content-Type") {
			sample = append(sample, &adminv1.HeaderField{Name: "Content-Type", Value: ct})
		}
	}
	if resp {
		req.ResponseHeaders = sample
		if req.RequestHeaders, err = parseFields(fieldsOf(c, "request-header")); err != nil {
			return err
		}
	} else {
		req.RequestHeaders = sample
	}
	for _, kv := range fieldsOf(c, "claim") {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return fmt.Errorf("--claim %q: want NAME=VALUE", kv)
		}
		if req.Claims == nil {
			req.Claims = map[string]string{}
		}
		req.Claims[name] = value
	}

	ctx, cancel := s.call(c)
	defer cancel()
	r, err := s.client.TransformTest(ctx, req, grpc.MaxCallRecvMsgSize(maxTransformAnswer))
	if err != nil {
		return err
	}
	if s.out == "table" {
		printTransform(stdout, r)
	} else if err := render(s.out, r, "", nil); err != nil {
		return err
	}
	if r.Outcome == "error" {
		what := r.Error
		if what == "" {
			what = "an error"
		}
		return fmt.Errorf("the gateway would answer %d %s: %s", r.Status, what, r.Reason)
	}
	return nil
}

// readBounded reads a file (- for stdin) of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	var rd io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		rd = f
	}
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes (%d MiB) is more than meshctl sends", path, limit, limit>>20)
	}
	return data, nil
}

// parseFields reads 'Name: value' headers.
func parseFields(values []string) ([]*adminv1.HeaderField, error) {
	var out []*adminv1.HeaderField
	for _, v := range values {
		name, value, ok := strings.Cut(v, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("header %q: want 'Name: value'", v)
		}
		out = append(out, &adminv1.HeaderField{Name: name, Value: strings.TrimSpace(value)})
	}
	return out, nil
}

func hasField(fields []*adminv1.HeaderField, name string) bool {
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// typeOf is the Content-Type of a sample by its file's extension.
func typeOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return "application/json"
	case ".xml":
		return "application/xml"
	}
	return ""
}

// printTransform prints a TransformTest as HTTP: what the run did and its
// notes as # lines, then the request (method, path and query) or the
// response (status), the headers, and the body.
func printTransform(w io.Writer, r *adminv1.TransformTestResponse) {
	var results []string
	for _, x := range r.Results {
		results = append(results, x.Side+" side "+x.Result)
	}
	if len(results) == 0 {
		results = append(results, "no transform ran")
	}
	fmt.Fprintf(w, "# route %s: %s\n", r.Route, strings.Join(results, ", "))
	for _, n := range r.Notes {
		fmt.Fprintf(w, "# %s\n", n)
	}
	if r.Outcome == "request" {
		fmt.Fprintf(w, "%s %s\n", r.Method, r.Path)
	} else {
		fmt.Fprintf(w, "HTTP/1.1 %d %s\n", r.Status, http.StatusText(int(r.Status)))
	}
	for _, h := range r.Headers {
		fmt.Fprintf(w, "%s: %s\n", h.Name, h.Value)
	}
	if r.BodySize == 0 {
		return
	}
	fmt.Fprintln(w)
	if !utf8.Valid(r.Body) {
		fmt.Fprintf(w, "(%d bytes that are not text; -o json has them in base64)\n", r.BodySize)
		return
	}
	fmt.Fprint(w, string(r.Body))
	if !strings.HasSuffix(string(r.Body), "\n") {
		fmt.Fprintln(w)
	}
	if r.BodySize > int64(len(r.Body)) {
		fmt.Fprintf(w, "# (the first %d bytes of %d)\n", len(r.Body), r.BodySize)
	}
}
