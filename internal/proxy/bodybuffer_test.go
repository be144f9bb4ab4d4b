package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/exchange"
)

func TestBufferBodyWhole(t *testing.T) {
	r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader("hello")))
	r.ContentLength = -1
	pre, fail := bufferBody(r, nil)
	if pre != nil || fail != nil {
		t.Fatalf("pre %v fail %v", pre, fail)
	}
	bb, ok := r.Body.(*BufferedBody)
	if !ok || string(bb.data) != "hello" || r.ContentLength != 5 {
		t.Fatalf("body %T, length %d", r.Body, r.ContentLength)
	}

	// Declared trailers keep the body chunked.
	r = httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader("hi")))
	r.ContentLength, r.Trailer = -1, http.Header{"X-Sum": nil}
	if _, fail := bufferBody(r, nil); fail != nil || r.ContentLength != -1 {
		t.Fatalf("fail %v, length %d", fail, r.ContentLength)
	}

	// An empty body is no body.
	r = httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader("")))
	r.ContentLength = -1
	if _, fail := bufferBody(r, nil); fail != nil || r.Body != http.NoBody || r.ContentLength != 0 {
		t.Fatalf("fail %v, body %T, length %d", fail, r.Body, r.ContentLength)
	}
}

func TestBufferBodyPrefixThenRest(t *testing.T) {
	want := strings.Repeat("x", RequestBufferBytes) + strings.Repeat("y", 100)
	r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(want)))
	r.ContentLength = -1
	pre, fail := bufferBody(r, nil)
	if pre == nil || fail != nil {
		t.Fatalf("pre %v fail %v", pre, fail)
	}
	got, err := io.ReadAll(r.Body)
	if err != nil || string(got) != want {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	pre.release()

	// Released before its prefix was read: reads fail, never see reused memory.
	r = httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(want)))
	r.ContentLength = -1
	pre, _ = bufferBody(r, nil)
	pre.release()
	if _, err := r.Body.Read(make([]byte, 10)); !errors.Is(err, errBufferReleased) {
		t.Fatalf("read after release: %v", err)
	}

	// A known length over the buffer is not read ahead.
	r = httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(want)))
	r.ContentLength = int64(len(want))
	body := r.Body
	if pre, fail := bufferBody(r, nil); pre != nil || fail != nil || r.Body != body {
		t.Fatalf("pre %v fail %v body %T", pre, fail, r.Body)
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestBufferBodyFaults(t *testing.T) {
	r := httptest.NewRequest("POST", "/", io.NopCloser(io.MultiReader(strings.NewReader("abc"), failingReader{errors.New("h1server: malformed chunk size line")})))
	r.ContentLength = -1
	x := &exchange.Exchange{}
	if _, fail := bufferBody(r, x); fail != exchange.BadBody || x.BytesIn != 3 {
		t.Fatalf("malformed: %v, bytes in %d", fail, x.BytesIn)
	}
	r = httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("z", 100)))
	r.ContentLength = -1
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
	if _, fail := bufferBody(r, nil); fail != exchange.BodyTooLarge {
		t.Fatalf("too large: %v", fail)
	}
}
