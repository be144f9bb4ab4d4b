package config

import (
	"testing"
	"time"
)

const cacheBase = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
auth:
  api_keys: [{name: keys, header: X-Api-Key}]
routes:
  - name: open
    upstream: u
    match: {path: {prefix: /open}}
  - name: authed
    upstream: u
    match: {path: {prefix: /authed}}
    auth: {methods: [keys], tier_limits: false}
`

func TestCacheDefaults(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(cacheBase+"    cache: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cache.MaxBytes != DefaultCacheMaxBytes {
		t.Errorf("cache.max_bytes = %d", cfg.Cache.MaxBytes)
	}
	c := cfg.Routes[1].Cache
	if c.MaxBody != 1<<20 || c.CollapseWait.D() != time.Second || c.TTL != 0 || c.StaleIfError != 0 || !c.PerConsumer() || c.Shared || c.StoreSetCookie {
		t.Errorf("authenticated route's cache = %+v", c)
	}
	open := "listeners: [{name: l, address: \"127.0.0.1:1\"}]\nupstreams: [{name: u, endpoints: [{address: \"127.0.0.1:2\"}]}]\n" +
		"routes:\n  - {name: a, upstream: u}\n  - name: b\n    upstream: u\n    match: {path: {prefix: /b}}\n    cache: {ttl: 30s, max_body: 64KiB, stale_if_error: 5m}\ncache: {max_bytes: 1MiB}\n"
	cfg, err = Parse("f.yaml", []byte(open))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Routes[1].Cache; c.PerConsumer() || c.TTL.D() != 30*time.Second || c.MaxBody != 64<<10 || c.StaleIfError.D() != 5*time.Minute || cfg.Cache.MaxBytes != 1<<20 {
		t.Errorf("open route's cache = %+v, store %+v", c, cfg.Cache)
	}
	cfg, err = Parse("f.yaml", []byte(cacheBase+"    cache: {shared: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Routes[1].Cache; c.PerConsumer() || !c.Shared {
		t.Errorf("shared route's cache = %+v", c)
	}
}

func TestCacheErrors(t *testing.T) {
	openRoute := func(fields string) string {
		return cacheBase + "  - name: c\n    upstream: u\n    match: {path: {prefix: /c}}\n    cache: " + fields + "\n"
	}
	for _, tc := range []struct {
		name, y string
		line    int
		want    string
	}{
		{"store too small", cacheBase + "cache: {max_bytes: 1KiB}\n", 13, "cache.max_bytes 1024 is too small: at least 65536 (64KiB)"},
		{"body over the entry share", openRoute("{max_body: 2MiB}") + "cache: {max_bytes: 8MiB}\n", 16,
			`route "c": cache max_body 2097152 exceeds what one entry may take of cache.max_bytes (1/8: 1048576); lower max_body or raise cache.max_bytes`},
		{"shared without auth", openRoute("{shared: true}"), 16, `route "c": cache shared applies to authenticated routes only`},
		{"vary_consumer without auth", openRoute("{vary_consumer: true}"), 16, `route "c": cache vary_consumer needs auth on the route`},
		{"shared and per consumer", cacheBase + "    cache: {shared: true, vary_consumer: true}\n", 13, "cache shared and vary_consumer exclude each other"},
		{"consumers mixed", cacheBase + "    cache: {vary_consumer: false}\n", 13, "cache vary_consumer false would hand one consumer's responses to another; set shared: true"},
		{"negative stale_if_error", openRoute("{stale_if_error: -1s}"), 16, `duration "-1s" must not be negative`},
		{"bad ttl", cacheBase + "    cache: {ttl: soon}\n", 13, `invalid duration "soon"`},
	} {
		t.Run(tc.name, func(t *testing.T) { checkOneError(t, tc.y, tc.line, tc.want) })
	}
}
