package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// splitBase has upstreams v1, v2 and v3, and a route r at line 10 whose
// body follows.
const splitBase = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams:
  - {name: v1, endpoints: [{address: "127.0.0.1:2"}]}
  - {name: v2, endpoints: [{address: "127.0.0.1:3"}]}
  - {name: v3, endpoints: [{address: "127.0.0.1:4"}]}
routes:
  - name: r
    match: {path: {prefix: /}}
`

func TestSplitValid(t *testing.T) {
	c, err := Parse("f.yaml", []byte(splitBase+`    split:
      - {upstream: v1, weight: 90}
      - {upstream: v2, weight: 10}
      - {upstream: v3, weight: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routes[0]
	if r.Upstream != "" || len(r.Split) != 3 {
		t.Fatalf("route %+v", r)
	}
	var ws []int
	for _, s := range r.Split {
		ws = append(ws, s.WeightOrZero())
	}
	if !slices.Equal(ws, []int{90, 10, 0}) {
		t.Errorf("weights %v", ws)
	}
	if got := r.UpstreamNames(); !slices.Equal(got, []string{"v1", "v2", "v3"}) {
		t.Errorf("UpstreamNames = %v", got)
	}
	single := Route{Upstream: "v1"}
	if got := single.UpstreamNames(); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("UpstreamNames of a single upstream = %v", got)
	}

	// Weights need not sum to 100; a single target is a split too.
	for _, body := range []string{
		"    split: [{upstream: v1, weight: 3}, {upstream: v2, weight: 1}]\n",
		"    split: [{upstream: v2, weight: 100}]\n",
		"    upstream: v1\n    split: []\n", // an empty split is no split
	} {
		if _, err := Parse("f.yaml", []byte(splitBase+body)); err != nil {
			t.Errorf("rejected %q: %v", body, err)
		}
	}
}

// Each bad split is rejected with the file:line:col of the problem.
func TestSplitErrors(t *testing.T) {
	eleven := "    split:\n"
	for i := range 11 {
		eleven += fmt.Sprintf("      - {upstream: v%d, weight: 1}\n", i%3+1)
	}
	cases := []struct{ name, body, want string }{
		{"both", "    upstream: v1\n    split: [{upstream: v2, weight: 10}]\n",
			`f.yaml:10:12: route "r": set upstream or split, not both`},
		{"neither", "",
			`f.yaml:7:5: route "r": upstream (or split) is required`},
		{"unknown upstream", "    split:\n      - {upstream: v1, weight: 90}\n      - {upstream: v9, weight: 10}\n",
			`f.yaml:11:20: route "r": unknown upstream "v9" in split`},
		{"all zero", "    split:\n      - {upstream: v1, weight: 0}\n      - {upstream: v2, weight: 0}\n",
			`f.yaml:10:7: route "r": every split weight is 0; at least one must be above 0`},
		{"too many", eleven,
			`f.yaml:10:7: route "r": split has 11 targets; at most 10 are allowed`},
		{"weight above 100", "    split: [{upstream: v1, weight: 101}]\n",
			`f.yaml:9:36: route "r": split weight 101 must be 0..100`},
		{"negative weight", "    split: [{upstream: v1, weight: 10}, {upstream: v2, weight: -1}]\n",
			`f.yaml:9:64: route "r": split weight -1 must be 0..100`},
		{"missing weight", "    split: [{upstream: v1, weight: 10}, {upstream: v2}]\n",
			`f.yaml:9:41: route "r": split[1].weight is required (0..100; 0 sends the upstream nothing)`},
		{"missing upstream", "    split: [{weight: 10}]\n",
			`f.yaml:9:13: route "r": split[0].upstream is required`},
		{"duplicate upstream", "    split: [{upstream: v1, weight: 10}, {upstream: v1, weight: 5}]\n",
			`f.yaml:9:52: route "r": upstream "v1" appears twice in split (split[0] and split[1]); give it one weight`},
		{"fraction", "    split: [{upstream: v1, weight: 0.5}]\n",
			`f.yaml:9:36: routes[0].split[0].weight: expected an integer, found "0.5"`},
		{"unknown field", "    split: [{upstream: v1, weight: 1, percent: 5}]\n",
			`f.yaml:9:39: unknown field "percent" in routes[0].split[0] (known: upstream, weight)`},
		{"not a list", "    split: {upstream: v1, weight: 1}\n",
			`f.yaml:9:12: routes[0].split: expected a list, found a mapping`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(splitBase+tc.body))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v (%T), want Errors", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

// A negative weight is reported once, not also as "every weight is 0".
func TestSplitErrorsAreNotRepeated(t *testing.T) {
	_, err := Parse("f.yaml", []byte(splitBase+"    split: [{upstream: v1, weight: -1}, {upstream: v2, weight: 0}]\n"))
	if es, ok := err.(Errors); !ok || len(es) != 1 {
		t.Fatalf("want 1 error, got %v", err)
	}
}

// A cluster route whose split names an upstream this node lacks is rejected
// like an unknown upstream; the others still apply.
func TestOverlaySplit(t *testing.T) {
	base, err := Parse("edge.yaml", []byte(splitBase+"    upstream: v1\n"))
	if err != nil {
		t.Fatal(err)
	}
	res := []Resource{
		{Kind: KindRoute, Name: "r", Value: []byte("name: r\nlisteners: [l]\nmatch: {path: {prefix: /}}\nsplit: [{upstream: v1, weight: 90}, {upstream: v2, weight: 10}]\n")},
		{Kind: KindRoute, Name: "c", Value: []byte("name: c\nlisteners: [l]\nmatch: {path: {prefix: /c}}\nsplit: [{upstream: v1, weight: 90}, {upstream: missing, weight: 10}]\n")},
		{Kind: KindRoute, Name: "d", Value: []byte("name: d\nlisteners: [l]\nmatch: {path: {prefix: /d}}\nupstream: v1\nsplit: [{upstream: v2, weight: 1}]\n")},
	}
	cfg, err := Overlay(base, res)
	if err == nil || cfg == nil {
		t.Fatalf("cfg %v err %v", cfg, err)
	}
	for _, want := range []string{`route "c": unknown upstream "missing" in split`, `route "d": set upstream or split, not both`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].Name != "r" || cfg.Routes[0].Upstream != "" || len(cfg.Routes[0].Split) != 2 {
		t.Fatalf("routes %+v, want r split 90/10 only", cfg.Routes)
	}
	if base.Routes[0].Upstream != "v1" || base.Routes[0].Split != nil {
		t.Fatal("base modified")
	}
}

// A split route survives the cluster's encoding (meshctl traffic shift
// writes one through EncodeResource).
func TestSplitEncodeDecode(t *testing.T) {
	in := Route{Name: "r", Listeners: []string{"l"}, Split: []SplitTarget{{Upstream: "v1", Weight: new(0)}, {Upstream: "v2", Weight: new(100)}}}
	data, err := EncodeResource(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeRoute("r", data)
	if err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if len(out.Split) != 2 || out.Split[0].Upstream != "v1" || out.Split[0].Weight == nil || *out.Split[0].Weight != 0 ||
		out.Split[1].WeightOrZero() != 100 {
		t.Fatalf("round trip of\n%s\ngave %+v", data, out.Split)
	}
}
