package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
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

// keysBase is an edge file with API-key auth, two consumers and tiers.
func keysBase(t *testing.T, aliceKey, bobKey string) *Config {
	t.Helper()
	base, err := Parse("edge.yaml", []byte(`
listeners: [{name: public, address: "127.0.0.1:0"}]
auth: {api_keys: [{name: keys, header: X-Api-Key}]}
consumers:
  - {name: alice, tier: free, metadata: {team: a}, api_keys: ["`+aliceKey+`"]}
  - {name: bob, tier: free, api_keys: ["`+bobKey+`"]}
tiers:
  - {name: default, limits: [{requests: 1, window: 1m}]}
  - {name: free, limits: [{requests: 10, window: 1m}]}
routes:
  - {name: a, match: {path: {prefix: /a}}, upstream: u, auth: {methods: [keys]}}
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:1"}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return base
}

func keyRes(t *testing.T, consumer, hash string) Resource {
	t.Helper()
	return Resource{Kind: KindAPIKey, Name: KeyID(hash), Value: []byte("consumer: " + consumer + "\nhash: " + hash + "\n")}
}

func hashOf(n int) string { return "sha256:" + strings.Repeat(string("0123456789abcdef"[n]), 64) }

func TestOverlayConsumersAndTiers(t *testing.T) {
	aliceKey, bobKey := hashOf(1), hashOf(2)
	base := keysBase(t, aliceKey, bobKey)
	cfg, err := Overlay(base, []Resource{
		// A consumer moves to a new tier; the file's keys stay with it.
		{Kind: KindConsumer, Name: "alice", Value: []byte("name: alice\ntier: gold\nmetadata: {team: b}\n")},
		{Kind: KindTier, Name: "gold", Value: []byte("name: gold\nlimits: [{requests: 1000, window: 1m}]\n")},
		// A tier of the file replaced, a consumer added, one removed.
		{Kind: KindTier, Name: "free", Value: []byte("name: free\nlimits: [{requests: 20, window: 1m}]\non_isolation: closed\n")},
		{Kind: KindConsumer, Name: "carol", Value: []byte("name: carol\n")},
		{Kind: KindConsumer, Name: "bob", Deleted: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	alice := cfg.Consumer("alice")
	if alice == nil || alice.Tier != "gold" || alice.Metadata["team"] != "b" || len(alice.APIKeys) != 1 || alice.APIKeys[0] != aliceKey {
		t.Fatalf("alice %+v", alice)
	}
	if c := cfg.Consumer("carol"); c == nil || c.Tier != "" {
		t.Fatalf("carol %+v", c)
	}
	if cfg.Consumer("bob") != nil {
		t.Fatal("bob not deleted")
	}
	if tr := cfg.Tier("free"); tr == nil || tr.Limits[0].Requests != 20 || tr.OnIsolation != "closed" {
		t.Fatalf("free %+v", tr)
	}
	if tr := cfg.Tier("gold"); tr == nil || tr.OnIsolation != "open" {
		t.Fatalf("gold %+v (defaults apply to cluster tiers)", tr)
	}
	if base.Consumer("alice").Tier != "free" || base.Consumer("bob") == nil || base.Tier("free").Limits[0].Requests != 10 {
		t.Fatal("base modified")
	}

	// Deleting a tier a consumer still uses does not fit; the rest applies.
	cfg, err = Overlay(base, []Resource{
		{Kind: KindTier, Name: "free", Deleted: true},
		{Kind: KindConsumer, Name: "carol", Value: []byte("name: carol\n")},
		{Kind: KindConsumer, Name: "dave", Value: []byte("name: dave\napi_keys: [\"" + hashOf(3) + "\"]\n")},
		{Kind: KindConsumer, Name: "eve", Value: []byte("name: eve\ntier: nope\n")},
		{Kind: KindTier, Name: "x", Value: []byte("name: y\nlimits: [{requests: 1, window: 1s}]\n")},
	})
	if err == nil || cfg == nil {
		t.Fatalf("cfg %v err %v", cfg, err)
	}
	for _, want := range []string{`tier "free"`, "a cluster consumer holds no keys", `"nope"`, `its name is "y"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if cfg.Tier("free") == nil || cfg.Consumer("carol") == nil || cfg.Consumer("dave") != nil || cfg.Consumer("eve") != nil {
		t.Fatalf("applied: tiers %v consumers %v", cfg.Tiers, cfg.Consumers)
	}
}

func TestOverlayAPIKeys(t *testing.T) {
	aliceKey, bobKey := hashOf(1), hashOf(2)
	base := keysBase(t, aliceKey, bobKey)
	k3, k4, k5 := hashOf(3), hashOf(4), hashOf(5)
	cfg, err := Overlay(base, []Resource{
		keyRes(t, "carol", k4), // carol is a cluster consumer, listed after her key
		keyRes(t, "alice", k3),
		{Kind: KindAPIKey, Name: KeyID(bobKey), Deleted: true}, // revokes the file's key
		keyRes(t, "nobody", k5),
		{Kind: KindConsumer, Name: "carol", Value: []byte("name: carol\ntier: free\n")},
		{Kind: KindAPIKey, Name: "deadbeef", Value: []byte("consumer: alice\nhash: " + k5 + "\n")},
		{Kind: KindAPIKey, Name: "bogus", Value: []byte("consumer: alice\nhash: " + hashOf(6) + "\nextra: 1\n")},
	})
	if err == nil || cfg == nil {
		t.Fatalf("cfg %v err %v", cfg, err)
	}
	for _, want := range []string{`unknown consumer "nobody"`, `its hash has the id "55555555"`, `unknown field "extra"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if got := strings.Join(cfg.Consumer("alice").APIKeys, ","); got != aliceKey+","+k3 {
		t.Errorf("alice's keys %s", got)
	}
	if got := cfg.Consumer("bob").APIKeys; len(got) != 0 {
		t.Errorf("bob's revoked file key is still there: %v", got)
	}
	if got := strings.Join(cfg.Consumer("carol").APIKeys, ","); got != k4 {
		t.Errorf("carol's keys %s", got)
	}
	if len(base.Consumer("bob").APIKeys) != 1 || len(base.Consumer("alice").APIKeys) != 1 {
		t.Fatal("base modified")
	}

	// A cluster key of a file key's id replaces it: here it moves to bob.
	cfg, err = Overlay(base, []Resource{keyRes(t, "bob", aliceKey)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Consumer("alice").APIKeys) != 0 || len(cfg.Consumer("bob").APIKeys) != 2 {
		t.Fatalf("alice %v bob %v", cfg.Consumer("alice").APIKeys, cfg.Consumer("bob").APIKeys)
	}
	// A deleted consumer takes its keys with it; a cluster key left
	// naming it is reported, the rest applies.
	cfg, err = Overlay(base, []Resource{{Kind: KindConsumer, Name: "alice", Deleted: true}, keyRes(t, "alice", k3), keyRes(t, "bob", k4)})
	if err == nil || !strings.Contains(err.Error(), `unknown consumer "alice"`) || cfg.Consumer("alice") != nil || len(cfg.Consumer("bob").APIKeys) != 2 {
		t.Fatalf("err %v cfg %+v", err, cfg)
	}
}

// A key in clear is refused wherever it appears, and never quoted.
func TestOverlayRefusesClearKeys(t *testing.T) {
	const clear = "mgk_2mtu7kqcndyvrlxh6sgsxvjb4fwq3pk5ryzrmenyqmxq5n6tu6ya"
	for _, v := range []string{"consumer: alice\nhash: " + clear + "\n", clear, "consumer: alice\n" + clear + ": 1\n"} {
		if _, err := DecodeAPIKey("k", []byte(v)); err == nil || strings.Contains(err.Error(), clear[4:]) || !strings.Contains(err.Error(), "in clear") {
			t.Errorf("DecodeAPIKey(%q): %v", v, err)
		}
	}
	if _, err := DecodeConsumer("c", []byte("name: a\napi_keys: ["+clear+"]\n")); err == nil || strings.Contains(err.Error(), clear[4:]) {
		t.Errorf("DecodeConsumer: %v", err)
	}
	if _, err := DecodeAPIKey("k", []byte("consumer: alice\nhash: sha256:ABC\n")); err == nil || !strings.Contains(err.Error(), "hash:") {
		t.Errorf("bad hash: %v", err)
	}
	if n, err := ResourceName(KindAPIKey, []byte("consumer: alice\nhash: "+hashOf(10)+"\n")); err != nil || n != "aaaaaaaa" {
		t.Errorf("ResourceName = %q, %v", n, err)
	}
}

// Many keys and a key that does not fit: the rest still applies at once,
// without trying every key on its own.
func TestOverlayManyKeys(t *testing.T) {
	base := keysBase(t, hashOf(1), hashOf(2))
	var res []Resource
	for i := range 5000 {
		h := fmt.Sprintf("sha256:%064x", i+1000)
		res = append(res, keyRes(t, "alice", h))
	}
	res = append(res, keyRes(t, "ghost", hashOf(7)))
	res = append(res, Resource{Kind: KindRoute, Name: "bad", Value: []byte("name: bad\nlisteners: [public]\nupstream: missing\n")})
	start := time.Now()
	cfg, err := Overlay(base, res)
	if err == nil || cfg == nil || len(cfg.Consumer("alice").APIKeys) != 5001 {
		t.Fatalf("err %v", err)
	}
	// About 0.1 s (3 s under -race on a loaded machine); trying every key
	// on its own would take minutes.
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("Overlay of 5,000 keys took %v", d)
	}
}
