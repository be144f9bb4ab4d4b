package auth

import (
	"net/http/httptest"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
)

// The per-request cost of the stage with a cached JWT and with an API key.
func BenchmarkStage(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, config.RouteAuth{Methods: []string{"jwt", "key"}})
	tok := f.token("acme", nil)
	for _, c := range []struct{ name, header, value string }{
		{"jwt", "Authorization", "Bearer " + tok},
		{"apikey", "X-Api-Key", f.key},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			rec := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				r.Header.Set(c.header, c.value)
				x := &exchange.Exchange{}
				f.h.ServeHTTP(rec, r.WithContext(exchange.With(r.Context(), x)))
			}
		})
	}
}
