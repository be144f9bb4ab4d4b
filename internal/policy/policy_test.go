package policy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

type closer struct{ closed int }

func (c *closer) Close() error { c.closed++; return nil }

func TestAcquireSharesUntilTheLastScopeCloses(t *testing.T) {
	shared := NewShared()
	opened := 0
	open := func() (*closer, error) { opened++; return &closer{}, nil }
	a, b := NewScope(shared), NewScope(shared)
	x, _ := Acquire(a, "jwt:issuer-1", open)
	y, _ := Acquire(b, "jwt:issuer-1", open)
	if x != y || opened != 1 {
		t.Fatalf("same key opened %d times", opened)
	}
	z, _ := Acquire(b, "jwt:issuer-2", open)
	a.Close()
	if x.closed != 0 {
		t.Fatal("closed while another scope still uses it")
	}
	b.Close()
	b.Close() // once
	if x.closed != 1 || z.closed != 1 || shared.Len() != 0 {
		t.Fatalf("closed %d/%d times, %d left", x.closed, z.closed, shared.Len())
	}
}

// A resource that the current snapshot dropped is not handed to a later
// one while a retired snapshot still finishes requests with it: a cache
// store dropped with its last route comes back empty, not with what it
// held (the node's cache reload test caught this under load).
func TestRetiredScopeResourcesAreNotReused(t *testing.T) {
	shared := NewShared()
	opened := 0
	open := func() (*closer, error) { opened++; return &closer{}, nil }
	old := NewScope(shared)
	x, _ := Acquire(old, "cache:store:1", open)
	kept, _ := Acquire(old, "jwt:issuer", open)

	current := NewScope(shared) // a config without the store
	if k, _ := Acquire(current, "jwt:issuer", open); k != kept {
		t.Fatal("a resource both snapshots use was opened again")
	}
	old.Retire() // a request still runs on it

	next := NewScope(shared) // the store is back
	y, _ := Acquire(next, "cache:store:1", open)
	if y == x || opened != 3 {
		t.Fatalf("the retired snapshot's store was handed on (opened %d)", opened)
	}
	if k, _ := Acquire(next, "jwt:issuer", open); k != kept {
		t.Fatal("a resource the current snapshot holds was opened again")
	}
	old.Close() // its last request ended
	if x.closed != 1 || y.closed != 0 || kept.closed != 0 {
		t.Fatalf("closed: retired store %d, new store %d, kept %d", x.closed, y.closed, kept.closed)
	}
	failed := NewScope(shared) // a reload whose build failed
	if k, _ := Acquire(failed, "cache:store:1", open); k != y {
		t.Fatal("the current store was opened again")
	}
	failed.Close()
	current.Retire()
	next.Retire()
	again := NewScope(shared) // neither current nor failed scopes hold the store now
	if z, _ := Acquire(again, "cache:store:1", open); z == y {
		t.Fatal("a store no current snapshot holds was handed on after a failed build")
	}
	again.Close()
	current.Close()
	next.Close()
	if y.closed != 1 || kept.closed != 1 || shared.Len() != 0 {
		t.Fatalf("closed: new store %d, kept %d; %d left", y.closed, kept.closed, shared.Len())
	}
}

func TestSortedFollowsOrder(t *testing.T) {
	mk := func(name string) Builder {
		return Of(name, func(*config.Route) *struct{} { return nil }, func(*struct{}, Env, http.Handler) (http.Handler, error) { return nil, nil })
	}
	got, err := Sorted([]Builder{mk("cache"), mk("auth"), mk("rate_limit")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range got {
		names = append(names, b.Name())
	}
	if strings.Join(names, ",") != "auth,rate_limit,cache" {
		t.Fatalf("order %v", names)
	}
	if _, err := Sorted([]Builder{mk("nope")}); err == nil {
		t.Fatal("unknown policy accepted")
	}
	if _, err := Sorted([]Builder{mk("auth"), mk("auth")}); err == nil {
		t.Fatal("repeated policy accepted")
	}
}

func TestOnHeaderChangesStatusAndHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	w := OnHeader(rec, func(status int, h http.Header) int {
		h.Set("X-Added", "1")
		return status + 1
	})
	w.Write([]byte("body"))
	if rec.Code != 201 || rec.Header().Get("X-Added") != "1" || rec.Body.String() != "body" {
		t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
}

func TestBufferedHoldsThenSends(t *testing.T) {
	rec := httptest.NewRecorder()
	b := Buffer(rec, 16)
	b.Header().Set("Content-Length", "5")
	b.WriteHeader(202)
	b.Write([]byte("hello"))
	if rec.Body.Len() != 0 || b.Spilled() {
		t.Fatal("sent before Send")
	}
	b.Body.Reset()
	b.Body.WriteString("changed!")
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 202 || rec.Body.String() != "changed!" || rec.Header().Get("Content-Length") != "8" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

func TestBufferedSpillsPastItsLimit(t *testing.T) {
	rec := httptest.NewRecorder()
	b := Buffer(rec, 4)
	b.Header().Set("X-Up", "1")
	b.Write([]byte("abc"))
	b.Write([]byte("defgh"))
	if !b.Spilled() || rec.Body.String() != "abcdefgh" || rec.Header().Get("X-Up") != "1" || rec.Code != 200 {
		t.Fatalf("spilled %v body %q", b.Spilled(), rec.Body.String())
	}
	if err := b.Send(); err != nil || rec.Body.String() != "abcdefgh" {
		t.Fatal("Send after a spill wrote again")
	}
}

func TestBufferedSpillsOnFlush(t *testing.T) {
	rec := httptest.NewRecorder()
	b := Buffer(rec, 1<<20)
	b.Write([]byte("event: 1\n\n"))
	b.Flush()
	if !b.Spilled() || !rec.Flushed || rec.Body.String() != "event: 1\n\n" {
		t.Fatal("a flushed stream was held back")
	}
}
