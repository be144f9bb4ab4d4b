package clusterstats

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/telemetry"
)

// The golden bytes pin the wire format: nodes of different releases
// gossip together, so these must never change (only a new wireVersion
// may).

var (
	goldenHeader    = header{node: "a", epoch: 1000, seq: 1}
	goldenHeaderHex = "0161" + "e807" + "01"
	goldenRecord    = record{upstream: "orders-v2", window: 30 * time.Second, requests: 100, errors: 5,
		hist: hist(map[int]uint64{10: 60, 12: 39, 40: 1})}
	goldenRecordHex = "09" + hex.EncodeToString([]byte("orders-v2")) + "1e" + "64" + "05" +
		"03" + "0a3c" + "0127" + "1b01" // buckets 10, 12 (gap 1) and 40 (gap 27)
	emptyRecord    = record{upstream: "u", window: 30 * time.Second}
	emptyRecordHex = "0175" + "1e" + "00" + "00" + "00"
)

func hist(m map[int]uint64) telemetry.LatencyHistogram {
	var h telemetry.LatencyHistogram
	for i, c := range m {
		h[i] = c
	}
	return h
}

func TestWireGolden(t *testing.T) {
	for _, g := range []struct {
		name string
		r    record
		hex  string
	}{{"record", goldenRecord, "01" + goldenHeaderHex + goldenRecordHex}, {"empty", emptyRecord, "01" + goldenHeaderHex + emptyRecordHex}} {
		if h := hex.EncodeToString(encodeMessage(goldenHeader, &g.r)); h != g.hex {
			t.Errorf("%s: encoded\n%s\nwant\n%s", g.name, h, g.hex)
		}
		b, _ := hex.DecodeString(g.hex)
		if h, r, err := decodeMessage(b); err != nil || h != goldenHeader || !reflect.DeepEqual(r, g.r) {
			t.Errorf("%s: decoded %+v %+v, %v", g.name, h, r, err)
		}
	}
	state := "01" + goldenHeaderHex + "02" + goldenRecordHex + emptyRecordHex
	rs := []record{goldenRecord, emptyRecord}
	if h := hex.EncodeToString(encodeState(goldenHeader, rs)); h != state {
		t.Errorf("state: encoded\n%s\nwant\n%s", h, state)
	}
	b, _ := hex.DecodeString(state)
	if h, got, err := decodeState(b); err != nil || h != goldenHeader || !reflect.DeepEqual(got, rs) {
		t.Errorf("state: decoded %+v %+v, %v", h, got, err)
	}
}

// A node of the next release writes a later version: fields appended to a
// message, an extension after each record of a state. This release reads
// what it knows and skips the rest, so the two share a cluster.
func TestWireNextReleaseIsRead(t *testing.T) {
	next := byte(wireVersion + 1)
	msg := append(encodeMessage(goldenHeader, &goldenRecord), 0x03, 'n', 'e', 'w')
	msg[0] = next
	if h, r, err := decodeMessage(msg); err != nil || h != goldenHeader || !reflect.DeepEqual(r, goldenRecord) {
		t.Errorf("message of the next release: %+v %+v, %v", h, r, err)
	}
	st := appendHeader([]byte{next}, goldenHeader)
	st = append(st, 2)
	for _, r := range []record{goldenRecord, emptyRecord} {
		st = appendRecord(st, &r)
		st = append(st, 0x02, 0xaa, 0xbb) // the record's extension
	}
	if h, rs, err := decodeState(st); err != nil || h != goldenHeader || len(rs) != 2 || !reflect.DeepEqual(rs[0], goldenRecord) {
		t.Errorf("state of the next release: %+v %+v, %v", h, rs, err)
	}
	// This release's own version has no extensions: trailing bytes are an
	// error, not a field.
	if _, _, err := decodeMessage(append(encodeMessage(goldenHeader, &goldenRecord), 0)); err == nil {
		t.Error("trailing byte in a v1 message accepted")
	}
}

func TestWireRejects(t *testing.T) {
	good := "01" + goldenHeaderHex + goldenRecordHex
	for name, h := range map[string]string{
		"version 0":           "00" + goldenHeaderHex + goldenRecordHex,
		"empty node":          "01" + "00e80701" + goldenRecordHex,
		"seq 0":               "01" + "0161e80700" + goldenRecordHex,
		"errors > requests":   "01" + goldenHeaderHex + "0175" + "1e" + "05" + "06" + "00",
		"bucket past the end": "01" + goldenHeaderHex + "0175" + "1e" + "01" + "00" + "01" + "2901",
		"zero bucket count":   "01" + goldenHeaderHex + "0175" + "1e" + "01" + "00" + "01" + "0000",
		"too many buckets":    "01" + goldenHeaderHex + "0175" + "1e" + "01" + "00" + "2a",
		"truncated":           good[:len(good)-2],
		"long name":           "01" + "ff01" + strings.Repeat("61", 255) + "e80701" + "8002" + strings.Repeat("61", 256) + "1e000000",
	} {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, _, err := decodeMessage(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
