package transport

import (
	"fmt"
	"testing"

	"github.com/meshgate/meshgate/pki/pkitest"
)

// BenchmarkPacketRoundTrip measures one packet from WriteTo to PacketCh
// on loopback, over an established mTLS connection:
//
//	go test -run - -bench Packet -benchmem ./internal/gossip/transport
func BenchmarkPacketRoundTrip(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			ca := pkitest.NewCA(b, td)
			src, dst := newTransport(b, identity(b, ca, "/a")), newTransport(b, identity(b, ca, "/b"))
			msg := make([]byte, size)
			to := dst.AdvertiseAddr()
			if _, err := src.WriteTo(msg, to); err != nil { // dial outside the timing
				b.Fatal(err)
			}
			<-dst.PacketCh()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := src.WriteTo(msg, to); err != nil {
					b.Fatal(err)
				}
				<-dst.PacketCh()
			}
		})
	}
}
