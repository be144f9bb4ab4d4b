package telemetry

import (
	"strings"
	"testing"
)

// Composite calls and partial responses are counted by route, and
// forgotten with their route.
func TestAggregateMetrics(t *testing.T) {
	m := NewMetrics()
	m.Call("page", "user", "ok")
	m.Call("page", "user", "ok")
	m.Call("page", "reviews", "timeout")
	m.Partial("page")
	m.Call("other", "x", "failed")
	text := scrapeText(t, m)
	for _, want := range []string{
		`meshgate_aggregate_calls_total{call="user",result="ok",route="page"} 2`,
		`meshgate_aggregate_calls_total{call="reviews",result="timeout",route="page"} 1`,
		`meshgate_aggregate_partial_total{route="page"} 1`,
		`meshgate_aggregate_calls_total{call="x",result="failed",route="other"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
	m.ForgetRoute("page")
	text = scrapeText(t, m)
	if strings.Contains(text, `route="page"`) || !strings.Contains(text, `route="other"`) {
		t.Errorf("after ForgetRoute:\n%s", text)
	}
	var nilMetrics *Metrics
	nilMetrics.Call("r", "c", "ok") // a nil *Metrics counts nothing
	nilMetrics.Partial("r")
}
