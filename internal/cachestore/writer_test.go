package cachestore

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestBodyWriter(t *testing.T) {
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + i/251)
		}
		return b
	}
	tests := []struct {
		name   string
		limit  int64
		size   int
		pieces int // write in this many pieces (0: io.Copy)
		ok     bool
	}{
		{"empty", 10, 0, 1, true},
		{"small", 100, 10, 3, true},
		{"exactly the limit", 100, 100, 7, true},
		{"one over the limit", 100, 101, 7, false},
		{"zero limit, empty body", 0, 0, 1, true},
		{"zero limit", 0, 1, 1, false},
		{"negative limit", -5, 1, 1, false},
		{"chunk boundary", chunkSize, chunkSize, 1, true},
		{"across chunks in one write", 1 << 20, 3*chunkSize + 17, 1, true},
		{"across chunks in odd pieces", 1 << 20, 5*chunkSize - 3, 13, true},
		{"io.Copy", 1 << 20, 200_000, 0, true},
		{"overflow after chunks", 2 * chunkSize, 2*chunkSize + 1, 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := pattern(tt.size)
			w := NewWriter(tt.limit)
			var client bytes.Buffer
			if tt.pieces == 0 {
				// The cache stage's shape: the client first, then the copy.
				if _, err := io.Copy(io.MultiWriter(&client, w), bytes.NewReader(body)); err != nil {
					t.Fatal(err)
				}
			} else {
				step := max(1, (tt.size+tt.pieces-1)/tt.pieces)
				for off := 0; off < tt.size || off == 0; off += step {
					p := body[off:min(off+step, tt.size)]
					n, err := io.MultiWriter(&client, w).Write(p)
					if n != len(p) || err != nil {
						t.Fatalf("Write = %d, %v", n, err)
					}
					if tt.size == 0 {
						break
					}
				}
			}
			if !bytes.Equal(client.Bytes(), body) {
				t.Fatal("the client did not get the whole body")
			}
			if w.Overflowed() == tt.ok {
				t.Fatalf("Overflowed = %v", w.Overflowed())
			}
			if !tt.ok && len(w.chunks) != 0 {
				t.Fatalf("an overflowed writer keeps %d chunks", len(w.chunks))
			}
			got, ok := w.Bytes()
			if ok != tt.ok {
				t.Fatalf("Bytes ok = %v, want %v", ok, tt.ok)
			}
			if ok && (!bytes.Equal(got, body) || cap(got) != len(got)) {
				t.Fatalf("Bytes = %d bytes (cap %d), want %d", len(got), cap(got), len(body))
			}
			if !ok && got != nil {
				t.Fatal("overflowed writer returned a body")
			}
			if len(w.chunks) != 0 {
				t.Fatal("Bytes kept the chunks")
			}
			again, ok2 := w.Bytes()
			if ok2 != ok || len(again) != len(got) {
				t.Fatal("second Bytes differs")
			}
			if _, err := w.Write([]byte("x")); !errors.Is(err, ErrWriterClosed) {
				t.Fatalf("Write after Bytes: %v", err)
			}
		})
	}
}

func TestBodyWriterDiscard(t *testing.T) {
	w := NewWriter(1 << 20)
	w.Write(make([]byte, 3*chunkSize))
	if w.Len() != 3*chunkSize || len(w.chunks) != 3 {
		t.Fatalf("Len %d chunks %d", w.Len(), len(w.chunks))
	}
	w.Discard()
	if len(w.chunks) != 0 || w.Len() != 0 {
		t.Fatal("Discard kept the chunks")
	}
	if b, ok := w.Bytes(); ok || b != nil {
		t.Fatal("Bytes after Discard returned a body")
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrWriterClosed) {
		t.Fatalf("Write after Discard: %v", err)
	}
}

// TestBodyWriterDoesNotLeakPooledBytes: a chunk reused from the pool never
// shows an earlier body's bytes.
func TestBodyWriterDoesNotLeakPooledBytes(t *testing.T) {
	for range 10 {
		w := NewWriter(1 << 20)
		w.Write(bytes.Repeat([]byte{0xAA}, chunkSize))
		w.Bytes()
		w2 := NewWriter(1 << 20)
		w2.Write([]byte("hi"))
		if got, _ := w2.Bytes(); string(got) != "hi" {
			t.Fatalf("got %q", got)
		}
	}
}
