package telemetry

import "testing"

// The counters read back are those /metrics shows, by route.
func TestCacheCounts(t *testing.T) {
	m := NewMetrics()
	m.CacheRequest("pages", "hit")
	m.CacheRequest("pages", "hit")
	m.CacheRequest("pages", "miss")
	m.CacheEviction("pages", "purged")
	m.CacheRequest("other", "stale")
	got := m.CacheCounts()
	if p := got["pages"]; p.Results["hit"] != 2 || p.Results["miss"] != 1 || p.Evictions["purged"] != 1 || len(p.Results) != 2 {
		t.Errorf("pages: %+v", p)
	}
	if o := got["other"]; o.Results["stale"] != 1 || len(o.Evictions) != 0 {
		t.Errorf("other: %+v", o)
	}
	m.ForgetRoute("pages")
	if _, ok := m.CacheCounts()["pages"]; ok {
		t.Error("a forgotten route is still counted")
	}
}
