package clusterstats

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/wire"
)

const (
	// wireVersion is the version this release writes and knows all of; it
	// reads any later one.
	wireVersion = 1
	maxName     = 255
	// maxCount bounds a count: 2^48 requests in a window is far beyond any
	// node, and the bound keeps sums of a few thousand nodes from
	// overflowing.
	maxCount = 1 << 48
	// maxWindowSeconds bounds a record's window (UpstreamStats keeps a
	// minute).
	maxWindowSeconds = 3600
	// maxExtension bounds what a later release may append to one record.
	maxExtension = 1 << 10
	// maxStateRecords bounds a state (and what MergeState accepts): one
	// node's upstreams with traffic in the window.
	maxStateRecords = 1024
	// minRecordSize: a one-byte upstream and five one-byte uvarints.
	minRecordSize = 2 + 5
)

// header says whose records follow, and how new they are.
type header struct {
	node  string
	epoch uint64
	seq   uint64
}

// record is one node's window of one upstream.
type record struct {
	upstream string
	window   time.Duration // whole seconds
	requests uint64
	errors   uint64
	hist     telemetry.LatencyHistogram
}

func appendHeader(b []byte, h header) []byte {
	b = wire.AppendString(b, h.node)
	b = wire.AppendUvarint(b, h.epoch)
	return wire.AppendUvarint(b, h.seq)
}

func appendRecord(b []byte, r *record) []byte {
	b = wire.AppendString(b, r.upstream)
	b = wire.AppendUvarint(b, uint64(r.window/time.Second))
	b = wire.AppendUvarint(b, r.requests)
	b = wire.AppendUvarint(b, r.errors)
	n := 0
	for _, c := range r.hist {
		if c > 0 {
			n++
		}
	}
	b = wire.AppendUvarint(b, uint64(n))
	prev := -1
	for i, c := range r.hist {
		if c > 0 {
			b = wire.AppendUvarint(b, uint64(i-prev-1))
			b = wire.AppendUvarint(b, c)
			prev = i
		}
	}
	return b
}

func encodeMessage(h header, r *record) []byte {
	return appendRecord(appendHeader([]byte{wireVersion}, h), r)
}

func encodeState(h header, rs []record) []byte {
	b := appendHeader([]byte{wireVersion}, h)
	b = wire.AppendUvarint(b, uint64(len(rs)))
	for i := range rs {
		b = appendRecord(b, &rs[i])
	}
	return b
}

func readName(rd *wire.Reader, what string) string {
	s := rd.String(maxName, what)
	if rd.Err() == nil && (s == "" || !utf8.ValidString(s)) {
		rd.Fail(fmt.Errorf("%s %q: empty or not UTF-8", what, s))
	}
	return s
}

func readHeader(rd *wire.Reader) header {
	h := header{node: readName(rd, "node"), epoch: rd.Uvarint(), seq: rd.Uvarint()}
	if rd.Err() == nil && h.seq == 0 {
		rd.Fail(errors.New("seq 0"))
	}
	return h
}

func readRecord(rd *wire.Reader) record {
	r := record{upstream: readName(rd, "upstream")}
	r.window = time.Duration(rd.UvarintMax(maxWindowSeconds, "window")) * time.Second
	r.requests = rd.UvarintMax(maxCount, "requests")
	r.errors = rd.UvarintMax(r.requests, "errors") // cannot exceed requests
	n := rd.Count(telemetry.LatencyBuckets, 2, "buckets")
	i := -1
	for range n {
		i += 1 + int(rd.UvarintMax(telemetry.LatencyBuckets, "bucket gap"))
		c := rd.UvarintMax(maxCount, "bucket count")
		if rd.Err() != nil {
			break
		}
		if i >= telemetry.LatencyBuckets || c == 0 {
			rd.Fail(fmt.Errorf("bucket %d of count %d", i, c))
			break
		}
		r.hist[i] = c
	}
	return r
}

// decodeMessage reads one broadcast record.
func decodeMessage(b []byte) (header, record, error) {
	rd := wire.NewReader(b)
	later := rd.AtLeastVersion(wireVersion) > wireVersion
	h := readHeader(rd)
	r := readRecord(rd)
	if later {
		rd.Rest() // fields a later release appended
	}
	if err := rd.Done(); err != nil {
		return header{}, record{}, fmt.Errorf("clusterstats: message: %w", err)
	}
	return h, r, nil
}

// decodeState reads a LocalState whole: one bad record rejects it all.
func decodeState(b []byte) (header, []record, error) {
	rd := wire.NewReader(b)
	later := rd.AtLeastVersion(wireVersion) > wireVersion
	h := readHeader(rd)
	n := rd.Count(maxStateRecords, minRecordSize, "records")
	rs := make([]record, 0, n)
	for range n {
		if rd.Err() != nil {
			break
		}
		rs = append(rs, readRecord(rd))
		if later {
			rd.Extension(maxExtension)
		}
	}
	if err := rd.Done(); err != nil {
		return header{}, nil, fmt.Errorf("clusterstats: state: %w", err)
	}
	return h, rs, nil
}
