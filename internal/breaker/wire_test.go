package breaker

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The golden bytes pin the wire format: nodes of different versions gossip
// together, so these must never change (only a new wireVersion may).

var goldenReports = []struct {
	name string
	r    report
	hex  string // encodeMessage(r)
}{
	{"open", report{state: stateOpen, gen: 1, ttl: 10 * time.Second, reporter: "p", endpoint: "10.0.0.1:8080"},
		"01" + "01" + "01" + "904e" + "0170" + "0d31302e302e302e313a38303830"},
	{"closed", report{state: stateClosed, gen: 300, ttl: 24 * time.Hour, reporter: "node-a", endpoint: "[::1]:443"},
		"01" + "00" + "ac02" + "80b89929" + "066e6f64652d61" + "095b3a3a315d3a343433"},
	{"reset", report{state: stateReset, gen: 1 << 62, ttl: 0, reporter: "me", endpoint: "e"},
		"01" + "02" + "808080808080808040" + "00" + "026d65" + "0165"},
	{"longest names", report{state: stateOpen, gen: 7, ttl: 1500 * time.Millisecond,
		reporter: strings.Repeat("r", maxName), endpoint: strings.Repeat("é", 127)},
		"01" + "01" + "07" + "dc0b" + "ff01" + strings.Repeat("72", 255) + "fe01" + strings.Repeat("c3a9", 127)},
}

// goldenState is encodeState of the open and closed reports.
const goldenState = "01" + "02" +
	"01" + "01" + "904e" + "0170" + "0d31302e302e302e313a38303830" +
	"00" + "ac02" + "80b89929" + "066e6f64652d61" + "095b3a3a315d3a343433"

func TestWireGolden(t *testing.T) {
	for _, g := range goldenReports {
		if h := hex.EncodeToString(encodeMessage(g.r)); h != g.hex {
			t.Errorf("%s: encoded\n%s\nwant\n%s", g.name, h, g.hex)
		}
		b, _ := hex.DecodeString(g.hex)
		if r, err := decodeMessage(b); err != nil || !reflect.DeepEqual(r, g.r) {
			t.Errorf("%s: decoded %+v, %v", g.name, r, err)
		}
	}
	// A ttl is sent in milliseconds rounded up, so a remaining open period
	// never shrinks to zero.
	r := goldenReports[0].r
	r.ttl = time.Nanosecond
	if h := hex.EncodeToString(encodeMessage(r)); h != "0101010101700d31302e302e302e313a38303830" {
		t.Errorf("1ns ttl: encoded %s", h)
	}

	rs := []report{goldenReports[0].r, goldenReports[1].r}
	if h := hex.EncodeToString(encodeState(rs)); h != goldenState {
		t.Errorf("state: encoded\n%s\nwant\n%s", h, goldenState)
	}
	b, _ := hex.DecodeString(goldenState)
	if got, err := decodeState(b); err != nil || !reflect.DeepEqual(got, rs) {
		t.Errorf("state: decoded %+v, %v", got, err)
	}
	if h := hex.EncodeToString(encodeState(nil)); h != "0100" {
		t.Errorf("empty state: encoded %s", h)
	}
	if got, err := decodeState([]byte{1, 0}); err != nil || len(got) != 0 {
		t.Errorf("empty state: decoded %+v, %v", got, err)
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	msg := encodeMessage(goldenReports[1].r)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeState(b *testing.B) {
	rs := make([]report, 100)
	for i := range rs {
		rs[i] = goldenReports[i%2].r
	}
	b.ReportAllocs()
	for b.Loop() {
		encodeState(rs)
	}
}

func BenchmarkDecodeState(b *testing.B) {
	rs := make([]report, 100)
	for i := range rs {
		rs[i] = goldenReports[i%2].r
	}
	state := encodeState(rs)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeState(state); err != nil {
			b.Fatal(err)
		}
	}
}

// A node of the next release writes a later version: fields appended to a
// message, an extension after each report of a state. This release reads
// what it knows and skips the rest, so the two share a cluster.
func TestWireNextReleaseIsRead(t *testing.T) {
	next := byte(wireVersion + 1)
	for _, g := range goldenReports {
		b, _ := hex.DecodeString(g.hex)
		b[0] = next
		b = append(b, 0x05, 'n', 'e', 'w') // a field this release does not know
		if r, err := decodeMessage(b); err != nil || !reflect.DeepEqual(r, g.r) {
			t.Errorf("%s from the next release: decoded %+v, %v", g.name, r, err)
		}
	}
	rs := []report{goldenReports[0].r, goldenReports[1].r}
	st := []byte{next, byte(len(rs))}
	for i, r := range rs {
		st = appendReport(st, r)
		st = append(append(st, byte(i)), "xyz"[:i]...) // an extension of i bytes
	}
	if got, err := decodeState(st); err != nil || !reflect.DeepEqual(got, rs) {
		t.Errorf("state from the next release: decoded %+v, %v", got, err)
	}
	// An extension is bounded like any field.
	big := append([]byte{next, 1}, appendReport(nil, rs[0])...)
	big = append(big, 0xff, 0xff, 0x03)
	if _, err := decodeState(big); err == nil {
		t.Error("an extension past the bound was accepted")
	}
}
