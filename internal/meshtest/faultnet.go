// Package meshtest holds test harnesses shared across meshgate's packages,
// built as values so that one test can run several independent ones.
//
// Network injects faults into memberlist transports: wrap each node's
// transport with the same Network, then partition, isolate and heal
// address groups while the nodes run over their real transports.
//
//	net := meshtest.NewNetwork()
//	conf.Transport = net.Wrap(tr.AdvertiseAddr(), tr)
//	net.Isolate(addrC)  // C's packets and dials go nowhere, both ways
//	net.Heal()
package meshtest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrPartitioned is wrapped by the error of a dial across a partition.
var ErrPartitioned = errors.New("meshtest: partitioned")

// Network is a set of fault rules between advertise addresses ("ip:port",
// as memberlist names nodes' addresses). The zero value is not usable;
// call NewNetwork. It is safe for concurrent use, and rule changes apply
// to the next packet or dial.
type Network struct {
	mu       sync.RWMutex
	cut      map[link]struct{}
	isolated map[string]struct{}
	link     Link // every link's quality (Degrade); zero: perfect

	delayed atomic.Int64 // writes held back by a loss (Delayed)
}

// link is one direction between two addresses.
type link struct{ from, to string }

// NewNetwork returns a Network with no faults.
func NewNetwork() *Network {
	return &Network{cut: make(map[link]struct{}), isolated: make(map[string]struct{})}
}

// Partition blocks all traffic, both ways, between every address of a and
// every address of b. Traffic within a group is untouched.
func (n *Network) Partition(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			n.cut[link{x, y}] = struct{}{}
			n.cut[link{y, x}] = struct{}{}
		}
	}
}

// Cut blocks traffic from one address to another, one way only: the
// asymmetric failures that exercise memberlist's indirect probes.
func (n *Network) Cut(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[link{from, to}] = struct{}{}
}

// Isolate blocks all traffic between addr and any other address,
// including nodes wrapped later.
func (n *Network) Isolate(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[addr] = struct{}{}
}

// Heal removes every fault, degraded links included.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	clear(n.isolated)
	n.link = Link{}
}

// Blocked reports whether traffic from one address to another is dropped.
// A node always reaches itself.
func (n *Network) Blocked(from, to string) bool {
	if from == to {
		return false
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if _, ok := n.isolated[from]; ok {
		return true
	}
	if _, ok := n.isolated[to]; ok {
		return true
	}
	_, ok := n.cut[link{from, to}]
	return ok
}

// Wrap returns t with the Network's faults applied for the node whose
// advertise address is self (with a transport on port 0, create it first
// and pass its final address). Outgoing packets to a blocked address are
// dropped silently, as a partitioned network would; dials to one fail
// with ErrPartitioned; incoming packets whose From is blocked towards self
// are dropped. Incoming streams are not filtered: their source is an
// ephemeral port, not an advertise address, and the dialling side, if
// wrapped by the same Network, already refuses the dial.
func (n *Network) Wrap(self string, t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	f := &faultTransport{
		net:     n,
		self:    self,
		inner:   t,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	f.wg.Add(2)
	go f.forward()
	go f.forwardStreams()
	return f
}

type faultTransport struct {
	net   *Network
	self  string
	inner memberlist.NodeAwareTransport

	packets  chan *memberlist.Packet
	streams  chan net.Conn
	done     chan struct{} // closed at Shutdown: stop delivering
	stopped  chan struct{} // closed once the inner transport is shut down
	wg       sync.WaitGroup
	shutdown sync.Once
	err      error

	pipesMu sync.Mutex
	pipes   map[string]*pipe // packets in flight on degraded links, by destination
}

// forward relays the inner transport's packets, dropping those from
// blocked senders. It is the only reader of the inner PacketCh, and it
// keeps draining it until the inner transport is shut down: memberlist's
// own NetTransport blocks its shutdown on a listener stuck sending a packet
// nobody reads.
func (f *faultTransport) forward() {
	defer f.wg.Done()
	for {
		select {
		case p := <-f.inner.PacketCh():
			if f.net.Blocked(p.From.String(), f.self) {
				continue
			}
			select {
			case f.packets <- p:
			case <-f.done: // shutting down: drop
			}
		case <-f.stopped:
			return
		}
	}
}

// forwardStreams relays the inner transport's incoming streams, each
// degraded as the links are when it arrives.
func (f *faultTransport) forwardStreams() {
	defer f.wg.Done()
	for {
		select {
		case c := <-f.inner.StreamCh():
			select {
			case f.streams <- f.degrade(c):
			case <-f.done:
				_ = c.Close()
			}
		case <-f.stopped:
			return
		}
	}
}

func (f *faultTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return f.inner.FinalAdvertiseAddr(ip, port)
}

func (f *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return f.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (f *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if f.net.Blocked(f.self, a.Addr) {
		return time.Now(), nil // lost on the wire: the sender cannot tell
	}
	if l, ok := f.net.degraded(); ok || f.hasPipe(a.Addr) {
		// In flight behind earlier packets to a (even once healed: in
		// order); a full pipe drops, as a full queue does.
		f.packetPipe(a).schedule(f.net, l, b)
		return time.Now(), nil
	}
	return f.inner.WriteToAddress(b, a)
}

func (f *faultTransport) PacketCh() <-chan *memberlist.Packet { return f.packets }

func (f *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return f.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (f *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if f.net.Blocked(f.self, a.Addr) {
		return nil, fmt.Errorf("%w: %s -> %s", ErrPartitioned, f.self, a.Addr)
	}
	c, err := f.inner.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return f.degrade(c), nil
}

func (f *faultTransport) StreamCh() <-chan net.Conn { return f.streams }

// hasPipe reports whether packets to addr have gone through a pipe.
func (f *faultTransport) hasPipe(addr string) bool {
	f.pipesMu.Lock()
	defer f.pipesMu.Unlock()
	return f.pipes[addr] != nil
}

// Shutdown stops the relay, then shuts the inner transport down.
func (f *faultTransport) Shutdown() error {
	f.shutdown.Do(func() {
		close(f.done)
		f.err = f.inner.Shutdown()
		close(f.stopped)
		f.wg.Wait()
	})
	return f.err
}
