package breaker

import (
	"errors"
	"fmt"
	"time"

	"github.com/meshgate/meshgate/internal/wire"
)

// The wire format is described in the package doc.
const (
	// wireVersion is the version this release writes and knows all of; it
	// reads any later one (what a later release appends is skipped).
	wireVersion = 1
	// maxExtension bounds what a later release may append to one report.
	maxExtension = 1 << 10
	maxName      = 255
	// maxStateEntries bounds a LocalState (and what MergeState accepts),
	// and maxStateBytes its size: about 100 KB with typical names.
	maxStateEntries = 2048
	maxStateBytes   = 256 << 10
	// minReportSize is the smallest encoded report: three one-byte uvarints
	// and two one-byte names, each after its one-byte length.
	minReportSize = 3 + 2 + 2
)

type wireState uint8

const (
	stateClosed wireState = iota
	stateOpen
	stateReset // a closed report that also withdraws every other vote; news only
)

// report is one reporter's word about one endpoint.
type report struct {
	state    wireState
	gen      uint64
	ttl      time.Duration // open: remaining open period; closed: how long it matters
	reporter string
	endpoint string
}

func appendReport(b []byte, r report) []byte {
	b = wire.AppendUvarint(b, uint64(r.state))
	b = wire.AppendUvarint(b, r.gen)
	// Milliseconds rounded up: a remaining period never shrinks to zero.
	b = wire.AppendUvarint(b, uint64((r.ttl+time.Millisecond-1)/time.Millisecond))
	b = wire.AppendString(b, r.reporter)
	return wire.AppendString(b, r.endpoint)
}

func encodeMessage(r report) []byte {
	return appendReport([]byte{wireVersion}, r)
}

func encodeState(rs []report) []byte {
	b := wire.AppendUvarint([]byte{wireVersion}, uint64(len(rs)))
	for _, r := range rs {
		b = appendReport(b, r)
	}
	return b
}

func readReport(rd *wire.Reader, resetOK bool) report {
	var r report
	st := rd.Uvarint()
	if st > uint64(stateReset) || (st == uint64(stateReset) && !resetOK) {
		rd.Fail(fmt.Errorf("unknown state %d", st))
	}
	r.state = wireState(st)
	if r.gen = rd.Uvarint(); r.gen == 0 {
		rd.Fail(errors.New("generation 0"))
	}
	r.ttl = time.Duration(rd.UvarintMax(uint64(maxTTL/time.Millisecond), "ttl ms")) * time.Millisecond
	r.reporter = readName(rd, "reporter")
	r.endpoint = readName(rd, "endpoint")
	return r
}

func readName(rd *wire.Reader, what string) string {
	s := rd.String(maxName, what)
	if rd.Err() == nil {
		if err := checkName(s); err != nil {
			rd.Fail(fmt.Errorf("%s: %w", what, err))
		}
	}
	return s
}

// decodeMessage reads one broadcast report.
func decodeMessage(b []byte) (report, error) {
	rd := wire.NewReader(b)
	later := rd.AtLeastVersion(wireVersion) > wireVersion
	r := readReport(rd, true)
	if later {
		rd.Rest() // fields a later release appended
	}
	if err := rd.Done(); err != nil {
		return report{}, fmt.Errorf("breaker: message: %w", err)
	}
	return r, nil
}

// decodeState reads a LocalState whole: one bad report rejects it all.
func decodeState(b []byte) ([]report, error) {
	rd := wire.NewReader(b)
	later := rd.AtLeastVersion(wireVersion) > wireVersion
	n := rd.Count(maxStateEntries, minReportSize, "reports")
	rs := make([]report, 0, n)
	for range n {
		if rd.Err() != nil {
			break
		}
		rs = append(rs, readReport(rd, false))
		if later {
			rd.Extension(maxExtension) // each report's, in a later release's state
		}
	}
	if err := rd.Done(); err != nil {
		return nil, fmt.Errorf("breaker: state: %w", err)
	}
	return rs, nil
}
