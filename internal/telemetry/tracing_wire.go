package telemetry

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/encoding/protowire"
)

// A span is encoded while it is built, into its own buffer, as the field
// ScopeSpans.spans (2) of an OTLP request:
//
//	[tag 2][length: 2 bytes reserved][attributes (9) and events (11), as
//	set][trace_id, span_id, trace_state, parent_span_id, name, kind,
//	start and end times, dropped counts, status, flags: appended by End]
//
// Protobuf fields may come in any order, so the attributes need not be
// kept anywhere but in their encoding: setting one appends it, ending the
// span appends what is left and writes the length (moving the contents
// when it takes other than the 2 reserved bytes). The exporter then only
// copies the span's bytes into its request.

// spanHeader is the reserved head of a span's encoding.
const spanHeader = 3

// maxSpanBuf is the largest buffer kept for reuse (a span with long
// attribute values may need more; its buffer is then left to the GC).
const maxSpanBuf = 16 << 10

// tag is the key of field num (< 16) of wire type typ, one byte.
func tag(num int, typ protowire.Type) byte { return byte(num<<3) | byte(typ) }

const (
	tagLen    = protowire.BytesType
	tagVarint = protowire.VarintType
)

func sizeVarint(v uint64) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	}
	return protowire.SizeVarint(v)
}

// appendVarint is inlined for the common one-byte case.
func appendVarint(b []byte, v uint64) []byte {
	if v < 1<<7 {
		return append(b, byte(v))
	}
	return appendVarintLong(b, v)
}

//go:noinline
func appendVarintLong(b []byte, v uint64) []byte {
	if v < 1<<14 {
		return append(b, byte(v)|0x80, byte(v>>7))
	}
	return protowire.AppendVarint(b, v)
}

// sizeLen is the size of a length-delimited field (of a one-byte tag)
// holding n bytes.
func sizeLen(n int) int { return 1 + sizeVarint(uint64(n)) + n }

func appendStr(b []byte, t byte, s string) []byte {
	b = append(b, t)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendKVString appends a KeyValue field (key t) with a string value.
func appendKVString(b []byte, t byte, key, v string) []byte {
	val := sizeLen(len(v)) // AnyValue{string_value}
	b = append(b, t)
	b = appendVarint(b, uint64(sizeLen(len(key))+sizeLen(val)))
	b = appendStr(b, tag(1, tagLen), key)
	b = append(b, tag(2, tagLen))
	b = appendVarint(b, uint64(val))
	return appendStr(b, tag(1, tagLen), v)
}

// appendResourceAttr appends an attribute of the resource (all strings).
func appendResourceAttr(b []byte, t byte, kv attribute.KeyValue) []byte {
	return appendKVString(b, t, string(kv.Key), kv.Value.Emit())
}

// appendEvent appends an Event field (11) with string attributes given as
// key, value pairs.
func appendEvent(b []byte, name string, at time.Time, kv []string) []byte {
	n := 1 + 8 + sizeLen(len(name))
	for i := 0; i+1 < len(kv); i += 2 {
		n += sizeLen(sizeLen(len(kv[i])) + sizeLen(sizeLen(len(kv[i+1]))))
	}
	b = append(b, tag(11, tagLen))
	b = appendVarint(b, uint64(n))
	b = append(b, tag(1, protowire.Fixed64Type))
	b = protowire.AppendFixed64(b, unixNano(at))
	b = appendStr(b, tag(2, tagLen), name)
	for i := 0; i+1 < len(kv); i += 2 {
		b = appendKVString(b, tag(3, tagLen), kv[i], kv[i+1])
	}
	return b
}

// spanFlagsTag is the key of Span.flags (field 16, fixed32): two bytes.
var spanFlagsTag = protowire.AppendTag(nil, 16, protowire.Fixed32Type)

// appendSpanTail appends the fields End knows.
func appendSpanTail(b []byte, s *Span) []byte {
	b = append(b, tag(1, tagLen), 16)
	b = append(b, s.traceID[:]...)
	b = append(b, tag(2, tagLen), 8)
	b = append(b, s.spanID[:]...)
	if s.traceState != "" {
		b = appendStr(b, tag(3, tagLen), s.traceState)
	}
	if s.parentID.IsValid() {
		b = append(b, tag(4, tagLen), 8)
		b = append(b, s.parentID[:]...)
	}
	name1, name2 := validUTF8(s.name1), validUTF8(s.name2)
	b = append(b, tag(5, tagLen))
	if name2 == "" {
		b = appendVarint(b, uint64(len(name1)))
		b = append(b, name1...)
	} else {
		b = appendVarint(b, uint64(len(name1)+1+len(name2)))
		b = append(b, name1...)
		b = append(b, ' ')
		b = append(b, name2...)
	}
	b = append(b, tag(6, tagVarint), byte(s.kind))
	b = append(b, tag(7, protowire.Fixed64Type))
	b = protowire.AppendFixed64(b, unixNano(s.start))
	b = append(b, tag(8, protowire.Fixed64Type))
	b = protowire.AppendFixed64(b, unixNano(s.end))
	if s.droppedEvents > 0 {
		b = append(b, tag(12, tagVarint))
		b = appendVarint(b, uint64(s.droppedEvents))
	}
	if s.status != StatusUnset {
		n := 2 // code
		if s.statusMsg != "" {
			n += sizeLen(len(s.statusMsg))
		}
		b = append(b, tag(15, tagLen))
		b = appendVarint(b, uint64(n))
		if s.statusMsg != "" {
			b = appendStr(b, tag(2, tagLen), s.statusMsg)
		}
		b = append(b, tag(3, tagVarint), byte(s.status))
	}
	// SpanFlags: the W3C flags, and whether the parent is remote.
	flags := uint32(s.flags) | 0x100
	if s.remoteParent {
		flags |= 0x200
	}
	b = append(b, spanFlagsTag...)
	return protowire.AppendFixed32(b, flags)
}

// putLen writes the length of buf[at:] as the varint reserved in the
// reserve bytes before at, moving the contents when it needs another
// number of bytes.
func putLen(buf []byte, at, reserve int) []byte {
	n := len(buf) - at
	size := sizeVarint(uint64(n))
	if size != reserve {
		if size > reserve {
			buf = append(buf, make([]byte, size-reserve)...)
		}
		copy(buf[at+size-reserve:], buf[at:at+n])
		buf = buf[:at+size-reserve+n]
	}
	var v [10]byte
	copy(buf[at-reserve:], appendVarint(v[:0], uint64(n)))
	return buf
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// Decoding, for the accessors an exporter other than OTLP uses (the
// tests' in-memory one): the attributes and events of an encoded span.

// spanFields calls fn with each length-delimited field of the span's
// encoding whose number is num.
func (s *Span) spanFields(num protowire.Number, fn func([]byte)) {
	b := s.buf
	if !s.recording || len(b) < spanHeader {
		return
	}
	// Skip the tag and the length (2 reserved bytes, or what putLen made).
	_, _, n := protowire.ConsumeTag(b)
	_, m := protowire.ConsumeVarint(b[n:])
	eachField(b[n+m:], func(f protowire.Number, v []byte) {
		if f == num {
			fn(v)
		}
	})
}

// eachField calls fn with every length-delimited field of a message.
func eachField(b []byte, fn func(protowire.Number, []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return
			}
			fn(num, v)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return
		}
		b = b[n:]
	}
}

// decodeKeyValue reads a KeyValue of a string, integer or boolean.
func decodeKeyValue(b []byte) attribute.KeyValue {
	var key string
	var kv attribute.KeyValue
	eachField(b, func(num protowire.Number, v []byte) {
		switch num {
		case 1:
			key = string(v)
		case 2:
			for len(v) > 0 {
				f, typ, n := protowire.ConsumeTag(v)
				if n < 0 {
					return
				}
				v = v[n:]
				switch {
				case f == 1 && typ == protowire.BytesType:
					s, n := protowire.ConsumeBytes(v)
					kv.Value, v = attribute.StringValue(string(s)), v[max(n, 0):]
				case f == 2 && typ == protowire.VarintType:
					x, n := protowire.ConsumeVarint(v)
					kv.Value, v = attribute.BoolValue(x != 0), v[max(n, 0):]
				case f == 3 && typ == protowire.VarintType:
					x, n := protowire.ConsumeVarint(v)
					kv.Value, v = attribute.Int64Value(int64(x)), v[max(n, 0):]
				default:
					return
				}
			}
		}
	})
	kv.Key = attribute.Key(key)
	return kv
}
