package wire

import (
	"bytes"
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
	} {
		in := map[string][]byte{"short uvarint": {0x80}, "over max": AppendString(nil, "abc"),
			"short bytes": {5, 'a'}, "forged count": AppendUvarint(nil, 1000), "trailing": {1, 2}}[name]
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
