package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// The wire format is described in the package doc; this file is its only
// encoder and decoder.

// MaxFrame is the largest packet the transport carries. memberlist sizes
// packets for UDP (Config.UDPBufferSize, 1400 bytes by default), so a
// larger frame is a bug or an attack; WriteTo refuses one and a peer that
// sends one is disconnected.
const MaxFrame = 64 << 10

// alpn names the protocol and its version; see the package doc.
const alpn = "meshgate-gossip/1"

// Connection types, the first byte the dialer writes after the handshake.
const (
	kindPacket byte = 0x01
	kindStream byte = 0x02
)

// maxHello bounds the hello frame: the longest advertise address,
// "[ffff:...:ffff]:65535", is 47 bytes.
const maxHello = 64

var (
	errFrameSize = errors.New("transport: frame length out of range")
	errKind      = errors.New("transport: unknown connection type")
	errHello     = errors.New("transport: bad hello")
)

// appendFrame appends the frame carrying payload to dst.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// readFrame reads one frame of 1..limit payload bytes. The payload is a
// fresh allocation because memberlist keeps packet buffers after the
// PacketCh receive (it hands parts of them to other goroutines). A clean
// end of stream before the frame returns io.EOF; a frame cut short returns
// io.ErrUnexpectedEOF.
func readFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > uint32(limit) {
		return nil, fmt.Errorf("%w: %d (limit %d)", errFrameSize, n, limit)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// appendPacketPreamble appends the start of a packet connection: the type
// byte and the hello announcing from.
func appendPacketPreamble(dst []byte, from netip.AddrPort) []byte {
	dst = append(dst, kindPacket)
	return appendFrame(dst, from.AppendTo(nil))
}

// readPreamble reads what the dialer sends right after the handshake: the
// connection type and, for a packet connection, the hello.
func readPreamble(r io.Reader) (kind byte, from netip.AddrPort, err error) {
	var k [1]byte
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return 0, netip.AddrPort{}, err
	}
	switch k[0] {
	case kindStream:
		return kindStream, netip.AddrPort{}, nil
	case kindPacket:
		b, err := readFrame(r, maxHello)
		if err != nil {
			return 0, netip.AddrPort{}, fmt.Errorf("%w: %w", errHello, err)
		}
		from, err := parseHello(b)
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		return kindPacket, from, nil
	default:
		return 0, netip.AddrPort{}, fmt.Errorf("%w: %#x", errKind, k[0])
	}
}

// parseHello accepts only an address memberlist could advertise: a
// specific IP without zone and a non-zero port, in canonical form (an
// IPv4-mapped IPv6 address is unmapped, as memberlist does with net.IP).
func parseHello(b []byte) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(string(b))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", errHello, err)
	}
	ip := ap.Addr()
	if ip.IsUnspecified() || ip.Zone() != "" || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: %q is not an advertise address", errHello, b)
	}
	return netip.AddrPortFrom(ip.Unmap(), ap.Port()), nil
}
