package telemetry

import (
	"strings"
	"testing"
)

// Cache results and evictions are counted by route, the stored bytes read
// from the stores when scraped, and a removed route's counters forgotten.
func TestCacheMetrics(t *testing.T) {
	m := NewMetrics()
	if text := scrapeText(t, m); strings.Contains(text, "meshgate_cache_stored_bytes{") {
		t.Errorf("stored bytes without a source:\n%s", text)
	}
	m.CacheRequest("pages", "hit")
	m.CacheRequest("pages", "hit")
	m.CacheRequest("pages", "miss")
	m.CacheEviction("pages", "size")
	m.CacheRequest("other", "bypass")
	m.CacheBytesFrom(func() map[string]int64 { return map[string]int64{"pages": 4096} })
	text := scrapeText(t, m)
	for _, want := range []string{
		`meshgate_cache_requests_total{result="hit",route="pages"} 2`,
		`meshgate_cache_requests_total{result="miss",route="pages"} 1`,
		`meshgate_cache_evictions_total{reason="size",route="pages"} 1`,
		`meshgate_cache_stored_bytes{route="pages"} 4096`,
		`meshgate_cache_requests_total{result="bypass",route="other"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
	m.ForgetRoute("pages")
	text = scrapeText(t, m)
	if strings.Contains(text, `meshgate_cache_requests_total{result="hit",route="pages"}`) || !strings.Contains(text, `route="other"`) {
		t.Errorf("after ForgetRoute:\n%s", text)
	}
}
