package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

// The cache suite's edge configs must be accepted by the edge's loader:
// one route, cached or not.
func TestCacheEdgeConfigValid(t *testing.T) {
	for _, cached := range []bool{true, false} {
		cfg, err := config.Parse("edge.yaml", []byte(cacheEdgeConfig("127.0.0.1:18000", "127.0.0.1:18001", "127.0.0.1:18002", cached)))
		if err != nil {
			t.Fatalf("cached=%v: %v", cached, err)
		}
		if len(cfg.Routes) != 1 || cfg.Routes[0].Name != "item" || (cfg.Routes[0].Cache != nil) != cached || cfg.Log.Access != "off" {
			t.Errorf("cached=%v: config = %+v", cached, cfg)
		}
	}
}

func TestNginxCacheConfig(t *testing.T) {
	c := nginxCacheConfig("/tmp/p", "127.0.0.1:1", "127.0.0.1:2", "/dev/shm/c")
	for _, want := range []string{"worker_processes 1;", "keepalive 128;", "listen 127.0.0.1:1;",
		"proxy_cache_path /dev/shm/c levels=1:2 keys_zone=bench:", "use_temp_path=off;",
		"proxy_cache bench;", "add_header X-Cache-Status $upstream_cache_status;", "cache benchmark"} {
		if !strings.Contains(c, want) {
			t.Errorf("nginx config lacks %q:\n%s", want, c)
		}
	}
	if strings.Count(c, "{") != strings.Count(c, "}") {
		t.Errorf("unbalanced braces:\n%s", c)
	}
}

func TestCacheUniqueScript(t *testing.T) {
	for _, want := range []string{"/proc/sys/kernel/random/uuid", "request = function()", `"/item?u=" .. run .. "-" .. n`} {
		if !strings.Contains(cacheUniqueScript, want) {
			t.Errorf("script lacks %q:\n%s", want, cacheUniqueScript)
		}
	}
}

func TestCacheJSON(t *testing.T) {
	r := &cacheRun{hitEdgeMisses: 1, missEdgeHits: 0, missEdgeMisses: -1, nginxTmpfs: true}
	r.hitEdge = &cacheTarget{key: "hit_edge"}
	r.nginx = &cacheTarget{key: "hit_nginx"}
	r.missEdge = &cacheTarget{key: "miss_edge"}
	r.plain = &cacheTarget{key: "plain"}
	r.nginxMiss = &cacheTarget{key: "miss_nginx"}
	r.nginxPlain = &cacheTarget{key: "plain_nginx"}
	missNginx := &cachePair{key: "miss_nginx", subject: r.nginxMiss, base: r.nginxPlain, ratios: []float64{0.45, 0.47, 0.44}}
	r.pairs = []*cachePair{
		{key: "hit", subject: r.hitEdge, base: r.nginx, target: cacheTargetHit, ratios: []float64{0.8, 0.9, 0.7}},
		{key: "miss", subject: r.missEdge, base: r.plain, targetOf: missNginx},
		missNginx,
		{key: "miss_vs_nginx", subject: r.missEdge, base: r.nginxMiss, target: cacheTargetMissVsNginx, ratios: []float64{0.9}},
	}
	r.hitEdge.rps, r.hitEdge.cpuUS = []float64{80, 90, 70}, []float64{10}
	r.nginx.rps, r.nginx.rss = []float64{100}, 3<<19
	frag, err := json.Marshal(cacheJSON(r))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(frag, &got); err != nil {
		t.Fatal(err)
	}
	if got["rps_hit_edge"] != 80.0 || got["rps_hit_nginx"] != 100.0 || got["ratio_hit"] != 0.8 || got["rounds"] != 3.0 ||
		got["cpu_us_per_req_hit_edge"] != 10.0 || got["rss_mb_hit_nginx"] != 1.5 || got["target_hit"] != cacheTargetHit ||
		got["ratio_miss_nginx"] != 0.45 || got["target_miss"] != 0.45 || got["ratio_miss_vs_nginx"] != 0.9 ||
		got["target_miss_vs_nginx"] != cacheTargetMissVsNginx || got["hit_edge_misses"] != 1.0 || got["miss_edge_hits"] != 0.0 ||
		got["nginx_tmpfs"] != true || got["body_bytes"] != 1024.0 {
		t.Errorf("fragment = %s", frag)
	}
	for _, k := range []string{"ratio_miss", "target_miss_nginx", "rps_plain", "miss_edge_misses", "error"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s in %s", k, frag)
		}
	}
}

func TestAtLeast(t *testing.T) {
	if atLeast(0.8, 0.8, true) != "PASS" || atLeast(0.79, 0.8, true) != "MISS" || atLeast(1, 0.8, false) != "-" {
		t.Error("atLeast")
	}
}
