package cache

import (
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/policy"
)

// Snapshots share the store of one max_bytes (so a reload keeps what is
// stored), a new max_bytes opens another, and a store is forgotten when
// the last snapshot using it retires.
func TestStoresAreSharedBySize(t *testing.T) {
	var evicted []string
	stores := NewStores(func(route, reason string) { evicted = append(evicted, route+":"+reason) }, nil)
	shared := policy.NewShared()
	a, b, c := policy.NewScope(shared), policy.NewScope(shared), policy.NewScope(shared)
	s1, _ := stores.Acquire(a, 1<<20)
	s2, _ := stores.Acquire(b, 1<<20)
	s3, _ := stores.Acquire(c, 2<<20)
	if s1 != s2 || s1 == s3 {
		t.Fatal("stores not shared by size")
	}
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		reply(w, 200, "v", "Cache-Control", "max-age=60")
	}}
	route := &config.Route{Name: "r", Cache: testCache()}
	h, err := Policy(Deps{Stores: stores, MaxBytes: 1 << 20}).Build(route, policy.Env{Route: "r", Scope: a}, o)
	if err != nil {
		t.Fatal(err)
	}
	send(h, "GET", "/a", "", nil)
	if got := stores.Bytes()["r"]; got <= 0 {
		t.Fatalf("bytes = %d", got)
	}
	send(h, "DELETE", "/a", "", nil)
	if len(evicted) != 1 || evicted[0] != "r:purged" {
		t.Errorf("evictions %v", evicted)
	}
	a.Close()
	b.Close()
	c.Close()
	if n := len(stores.Bytes()); n != 0 || shared.Len() != 0 {
		t.Errorf("%d routes, %d resources left", n, shared.Len())
	}
}
