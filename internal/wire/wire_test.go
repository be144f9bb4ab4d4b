package wire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	b := AppendUvarint(nil, 300)
	b = AppendString(b, "orders")
	b = AppendBytes(b, []byte{1, 2})
	b = append(b, 'k')
	r := NewReader(b)
	if v := r.Uvarint(); v != 300 {
		t.Fatalf("uvarint %d", v)
	}
	if s := r.String(10, "name"); s != "orders" {
		t.Fatalf("string %q", s)
	}
	if v := r.Bytes(2, "value"); !bytes.Equal(v, []byte{1, 2}) {
		t.Fatalf("bytes %v", v)
	}
	if c := r.Byte(); c != 'k' || r.Done() != nil {
		t.Fatalf("byte %q, done %v", c, r.Done())
	}
}

func TestErrorsStick(t *testing.T) {
	for name, read := range map[string]func(*Reader){
		"short uvarint": func(r *Reader) { r.Uvarint() },
		"over max":      func(r *Reader) { r.String(2, "name") },
		"short bytes":   func(r *Reader) { r.Bytes(100, "value") },
		"forged count":  func(r *Reader) { r.Count(1<<30, 4, "items") },
		"trailing":      func(r *Reader) { r.Byte() },
		"uvarint > max": func(r *Reader) { r.UvarintMax(299, "clock") },
		"other version": func(r *Reader) { r.Version(1) },
		"no version":    func(r *Reader) { r.Version(1) },
		"overflow":      func(r *Reader) { r.UvarintMax(math.MaxUint64, "clock") },
	} {
		in := map[string][]byte{"short uvarint": {0x80}, "over max": AppendString(nil, "abc"),
			"short bytes": {5, 'a'}, "forged count": AppendUvarint(nil, 1000), "trailing": {1, 2},
			"uvarint > max": AppendUvarint(nil, 300), "other version": {2, 0}, "no version": {},
			"overflow": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}}[name]
		r := NewReader(in)
		read(r)
		if r.Done() == nil {
			t.Errorf("%s: no error", name)
		}
		if r.Uvarint() != 0 || r.Bytes(10, "x") != nil || r.Err() == nil {
			t.Errorf("%s: reads after an error returned data", name)
		}
	}
}

func TestUvarintMax(t *testing.T) {
	r := NewReader(AppendUvarint(AppendUvarint(nil, 300), 301))
	if v := r.UvarintMax(300, "clock"); v != 300 || r.Err() != nil {
		t.Fatalf("at the max: %d, %v", v, r.Err())
	}
	if v := r.UvarintMax(300, "clock"); v != 0 || r.Err() == nil || r.Err().Error() != "clock 301 exceeds 300" {
		t.Fatalf("over the max: %d, %v", v, r.Err())
	}
}

func TestVersion(t *testing.T) {
	r := NewReader([]byte{1, 7})
	if r.Version(1); r.Err() != nil || r.Uvarint() != 7 {
		t.Fatalf("version 1: %v", r.Err())
	}
	r = NewReader([]byte{2, 7})
	if r.Version(1); !errors.Is(r.Err(), ErrVersion) || r.Err().Error() != "unsupported wire version 2" {
		t.Fatalf("version 2: %v", r.Err())
	}
	r = NewReader(nil)
	if r.Version(1); r.Err() != ErrShort {
		t.Fatalf("no version: %v", r.Err())
	}
}

// TestSizes: UvarintLen and StringLen are the sizes the Append functions
// write.
func TestSizes(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 1<<14 - 1, 1 << 14, 1<<21 - 1, 1 << 21,
		1<<35 - 1, 1 << 35, 1<<56 - 1, 1 << 56, 1<<63 - 1, 1 << 63, math.MaxUint64} {
		if got, want := UvarintLen(v), len(AppendUvarint(nil, v)); got != want {
			t.Errorf("UvarintLen(%d) = %d, want %d", v, got, want)
		}
	}
	for _, n := range []int{0, 1, 127, 128, 1 << 14} {
		s := strings.Repeat("x", n)
		if got, want := StringLen(s), len(AppendString(nil, s)); got != want {
			t.Errorf("StringLen of %d bytes = %d, want %d", n, got, want)
		}
	}
}

// BenchmarkReader reads a message of 100 (uvarint, string) pairs.
func BenchmarkReader(b *testing.B) {
	msg := AppendUvarint(nil, 100)
	for i := range 100 {
		msg = AppendUvarint(msg, uint64(i)<<20)
		msg = AppendString(msg, "tenant-0/consumer-42")
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(msg)
		n := r.Count(100, 2, "pairs")
		for range n {
			r.Uvarint()
			r.Bytes(255, "name")
		}
		if r.Done() != nil {
			b.Fatal(r.Err())
		}
	}
}
