package config

import (
	"strings"
	"testing"
)

func TestOverlayPrecedenceAndBadResources(t *testing.T) {
	base, err := Parse("edge.yaml", []byte(`
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: a, match: {path: {prefix: /a}}, upstream: u}
  - {name: b, match: {path: {prefix: /b}}, upstream: u}
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:1"}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	res := []Resource{
		{Kind: KindUpstream, Name: "v", Value: []byte("name: v\nendpoints: [{address: \"127.0.0.1:2\"}]\n")},
		{Kind: KindRoute, Name: "a", Value: []byte("name: a\nlisteners: [public]\nmatch: {path: {prefix: /a}}\nupstream: v\n")},
		{Kind: KindRoute, Name: "b", Deleted: true},
		{Kind: KindRoute, Name: "c", Value: []byte("name: c\nlisteners: [public]\nmatch: {path: {prefix: /c}}\nupstream: missing\n")},
		{Kind: KindRoute, Name: "d", Value: []byte("name: d\nlisteners: [sidecar-only]\nmatch: {path: {prefix: /d}}\nupstream: u\n")},
		{Kind: KindRoute, Name: "e", Value: []byte("name: e\nlisteners: [public]\nbogus: 1\n")},
		{Kind: KindRoute, Name: "f", Value: []byte("name: other\nlisteners: [public]\nupstream: u\n")},
	}
	cfg, err := Overlay(base, res)
	if err == nil || cfg == nil {
		t.Fatalf("cfg %v err %v", cfg, err)
	}
	for _, want := range []string{`unknown upstream "missing"`, `unknown field "bogus"`, `its name is "other"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	var names []string
	for _, r := range cfg.Routes {
		names = append(names, r.Name+"→"+r.Upstream)
	}
	if got := strings.Join(names, " "); got != "a→v" {
		t.Fatalf("routes %q, want a→v (b deleted, c/e/f rejected, d for other nodes)", got)
	}
	if len(base.Routes) != 2 || base.Routes[0].Upstream != "u" {
		t.Fatal("base modified")
	}
}
