package cache

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/policy"
)

func TestNewPurgeNormalizesAndRefuses(t *testing.T) {
	at := time.Unix(100, 0)
	for _, c := range []struct{ mode, value, want string }{
		{PurgePath, "/a/%7Eb", "/a/~b"},
		{PurgePath, "/a/./b/../c", "/a/c"},
		{PurgePrefix, "/img/", "/img/"},
		{PurgePath, "//x", "//x"}, // a path, as a request line has it, not a host
		{PurgeAll, "", ""},
	} {
		p, err := NewPurge("r", c.mode, c.value, at)
		if err != nil || p.Value != c.want {
			t.Errorf("%s %q: %q, %v; want %q", c.mode, c.value, p.Value, err, c.want)
		}
	}
	for _, c := range []struct{ route, mode, value string }{
		{"", PurgeAll, ""}, {"r", "everything", ""}, {"r", PurgeAll, "/a"}, {"r", PurgePath, "a"},
		{"r", PurgePath, ""}, {"r", PurgePath, "/a?x=1"}, {"r", PurgePrefix, "/" + strings.Repeat("a", maxPurgeValue)},
	} {
		if _, err := NewPurge(c.route, c.mode, c.value, at); err == nil {
			t.Errorf("NewPurge(%q, %q, %q) accepted", c.route, c.mode, c.value)
		}
	}
}

// A purge travels as JSON; what comes back in is checked like an
// operator's request, and must be normalized already.
func TestPurgeCodec(t *testing.T) {
	p, _ := NewPurge("r", PurgePrefix, "/a/", time.Unix(100, 5))
	got, err := DecodePurge(p.Encode())
	if err != nil || got.Route != "r" || got.Mode != PurgePrefix || got.Value != "/a/" || !got.At.Equal(p.At) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{`{`, `{"route":"r","mode":"all"}`, `{"route":"r","mode":"path","value":"/a/%7e","at":"2026-01-01T00:00:00Z"}`,
		`{"route":"","mode":"all","at":"2026-01-01T00:00:00Z"}`, `{"route":"r","mode":"x","at":"2026-01-01T00:00:00Z"}`} {
		if _, err := DecodePurge([]byte(bad)); err == nil {
			t.Errorf("DecodePurge(%s) accepted", bad)
		}
	}
}

// Through real stages sharing the node's stores: a purge removes what was
// stored by its time, on its route and path only; what was stored after
// it (a node applying it late, or applying it twice) is kept.
func TestStoresPurgeSparesNewerEntries(t *testing.T) {
	clk := newClock()
	stores := NewStores(nil, clk.Now)
	scope := policy.NewScope(policy.NewShared())
	t.Cleanup(func() { scope.Close() })
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		reply(w, 200, "v", "Cache-Control", "max-age=600")
	}}
	build := func(route string) http.Handler {
		h, err := Policy(Deps{Stores: stores, MaxBytes: 1 << 20, Now: clk.Now}).Build(&config.Route{Name: route, Cache: testCache()},
			policy.Env{Route: route, Scope: scope}, o)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	pages, other := build("pages"), build("other")
	cached := func(h http.Handler, path string) bool {
		return strings.HasPrefix(send(h, "GET", path, "", nil).Header().Get("Cache-Status"), "meshgate; hit")
	}

	send(pages, "GET", "/p/old", "", nil)
	send(pages, "GET", "/p/old?q=1", "", nil)
	send(pages, "GET", "/q/kept", "", nil)
	send(other, "GET", "/p/old", "", nil)
	clk.Advance(time.Second)
	purge, _ := NewPurge("pages", PurgePrefix, "/p/", clk.Now())
	clk.Advance(time.Second)
	send(pages, "GET", "/p/new", "", nil) // stored after the purge was issued

	// Applied late: one second after it was issued.
	if n := stores.Purge(purge, purge.At); n != 2 {
		t.Fatalf("purged %d entries, want /p/old and /p/old?q=1", n)
	}
	if cached(pages, "/p/old") || cached(pages, "/p/old?q=1") {
		t.Error("a purged entry answered")
	}
	if !cached(pages, "/p/new") || !cached(pages, "/q/kept") || !cached(other, "/p/old") {
		t.Error("an entry outside the purge, or stored after it, is gone")
	}
	// /p/old is stored again (now, after the purge): a repeat keeps it.
	if n := stores.Purge(purge, purge.At); n != 0 {
		t.Errorf("applied again: purged %d", n)
	}
	if !cached(pages, "/p/old") {
		t.Error("applied again, the purge removed a response stored after it")
	}

	st := stores.Stats()["pages"]
	if st.Entries != 4 || st.Bytes <= 0 || st.Evictions[cachestore.ReasonPurged] != 2 {
		t.Errorf("stats: %+v", st)
	}
}
