package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
)

func mustAddrPort(t testing.TB, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func TestReadFrame(t *testing.T) {
	frame := func(n uint32, payload string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, n), payload...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"one byte", frame(1, "x"), "x", nil},
		{"trailing bytes stay unread", frame(2, "abcd"), "ab", nil},
		{"empty stream", nil, "", io.EOF},
		{"short header", []byte{0, 0}, "", io.ErrUnexpectedEOF},
		{"zero length", frame(0, ""), "", errFrameSize},
		{"over the limit", frame(9, "123456789"), "", errFrameSize},
		{"huge length, no allocation", frame(1<<31, ""), "", errFrameSize},
		{"cut short", frame(5, "abc"), "", io.ErrUnexpectedEOF},
		{"header only", frame(5, ""), "", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(tc.in), 8)
			if !errors.Is(err, tc.err) || string(got) != tc.want {
				t.Fatalf("readFrame = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestPreamble(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:7946", "[::1]:1", "[2001:db8::1]:65535"} {
		ap := mustAddrPort(t, addr)
		kind, from, err := readPreamble(bytes.NewReader(appendPacketPreamble(nil, ap)))
		if err != nil || kind != kindPacket || from != ap {
			t.Errorf("%s: readPreamble = %d, %v, %v", addr, kind, from, err)
		}
	}
	if kind, _, err := readPreamble(bytes.NewReader([]byte{kindStream, 'x'})); err != nil || kind != kindStream {
		t.Errorf("stream preamble: %d, %v", kind, err)
	}
	hello := func(s string) []byte { return appendFrame([]byte{kindPacket}, []byte(s)) }
	for name, in := range map[string][]byte{
		"unknown type":     {0x16, 3, 1}, // a TLS record header, say
		"no hello":         {kindPacket},
		"unspecified":      hello("0.0.0.0:7946"),
		"port 0":           hello("127.0.0.1:0"),
		"host name":        hello("node-1:7946"),
		"zone":             hello("[fe80::1%eth0]:7946"),
		"no port":          hello("127.0.0.1"),
		"leading zeros":    hello("127.0.0.01:7946"),
		"hello too long":   hello("[2001:db8::1]:7946" + string(make([]byte, maxHello))),
		"empty connection": nil,
	} {
		if _, _, err := readPreamble(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// memberlist converts IPv4 to its 4-byte form; a mapped hello must
	// compare equal to the address memberlist dials.
	_, from, err := readPreamble(bytes.NewReader(hello("[::ffff:10.0.0.1]:7946")))
	if err != nil || from.String() != "10.0.0.1:7946" {
		t.Errorf("mapped address: %v, %v", from, err)
	}
}

// FuzzReadFrame: the decoder never panics, never returns more than the
// limit, and what it returns re-encodes to the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, []byte("hello")))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 1024
		got, err := readFrame(bytes.NewReader(in), limit)
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with payload", err)
			}
			return
		}
		if len(got) == 0 || len(got) > limit {
			t.Fatalf("payload of %d bytes", len(got))
		}
		if enc := appendFrame(nil, got); !bytes.Equal(enc, in[:len(enc)]) {
			t.Fatalf("re-encoded %x, consumed %x", enc, in[:len(enc)])
		}
	})
}

// FuzzReadPreamble: whatever an authenticated peer sends first, the
// result is an error or a well-formed packet/stream preamble that
// round-trips.
func FuzzReadPreamble(f *testing.F) {
	f.Add(appendPacketPreamble(nil, netip.MustParseAddrPort("127.0.0.1:7946")))
	f.Add([]byte{kindStream})
	f.Add([]byte{0x16, 0x03, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		kind, from, err := readPreamble(bytes.NewReader(in))
		if err != nil {
			return
		}
		switch kind {
		case kindStream:
			if from.IsValid() {
				t.Fatal("stream with an address")
			}
		case kindPacket:
			if !from.IsValid() || from.Port() == 0 || from.Addr().IsUnspecified() || from.Addr().Is4In6() {
				t.Fatalf("accepted hello %v", from)
			}
			_, again, err := readPreamble(bytes.NewReader(appendPacketPreamble(nil, from)))
			if err != nil || again != from {
				t.Fatalf("round trip of %v: %v, %v", from, again, err)
			}
		default:
			t.Fatalf("kind %d", kind)
		}
	})
}
