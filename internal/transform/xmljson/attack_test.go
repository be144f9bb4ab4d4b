package xmljson

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// streamReader produces prefix, then unit repeated, up to size bytes in
// all, without holding them: a 100 MB attack costs nothing to build.
type streamReader struct {
	prefix, unit []byte
	size, read   int64
}

func newStream(prefix, unit string, size int64) *streamReader {
	return &streamReader{prefix: []byte(prefix), unit: []byte(unit), size: size}
}

func (s *streamReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && s.read < s.size {
		var src []byte
		if s.read < int64(len(s.prefix)) {
			src = s.prefix[s.read:]
		} else {
			src = s.unit[(s.read-int64(len(s.prefix)))%int64(len(s.unit)):]
		}
		if rest := s.size - s.read; int64(len(src)) > rest {
			src = src[:rest]
		}
		c := copy(p[n:], src)
		n += c
		s.read += int64(c)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// measure runs f once and returns how long it took and how many bytes it
// allocated (runtime.MemStats.TotalAlloc, an upper bound of its peak).
func measure(f func()) (time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	return d, after.TotalAlloc - before.TotalAlloc
}

const (
	attackSize = 100 << 20 // each stream offers 100 MB
	mib        = 1 << 20
)

// TestXMLAttacks: hostile XML streams of 100 MB are refused having read at
// most MaxBytes+1 bytes (or, for the shapes refused on sight, one 4 KiB
// buffer), quickly, with allocations bounded by a small multiple of
// MaxBytes whatever the stream's size.
func TestXMLAttacks(t *testing.T) {
	c, err := New(Options{}) // MaxBytes 1 MiB, depth 64, 100,000 elements
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		name, prefix, unit string
		kind               Kind
		want               string
		maxRead            int64
		maxAlloc           uint64
	}{
		{"10,000-deep nesting", "", "<a>", KindLimit, "nested deeper than 64", 4096, 256 << 10},
		{"billion laughs", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>`, "&lol1;", KindUnsupported, "DOCTYPE", 4096, 64 << 10},
		{"xxe", `<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///dev/random">]><foo>`, "&xxe;", KindUnsupported, "DOCTYPE", 4096, 64 << 10},
		{"endless DOCTYPE", `<!DOCTYPE a [<!ENTITY e "`, "lol", KindLimit, "larger than 1048576 bytes", mib + 1, 8 * mib},
		{"endless text", "<a>", "lol ", KindLimit, "larger than", mib + 1, 8 * mib},
		{"endless comment", "<a><!--", "lol ", KindLimit, "larger than", mib + 1, 8 * mib},
		{"endless CDATA", "<a><![CDATA[", "lol ", KindLimit, "larger than", mib + 1, 8 * mib},
		{"endless attribute value", `<a x="`, "lol ", KindLimit, "larger than", mib + 1, 8 * mib},
		{"endless name", "<a", "lol", KindLimit, "larger than", mib + 1, 8 * mib},
		{"endless attributes", "<a ", `b="" `, KindLimit, "more than 256 attributes on one element", 4096, 256 << 10},
		{"endless siblings", "<a>", "<b/>", KindLimit, "more than 100000 elements", 100_000*4 + 4096, 48 * mib},
		{"endless entities", "<a>", "&amp;", KindLimit, "larger than", mib + 1, 8 * mib},
		{"endless roots", "", "<a/>", KindSyntax, "second root", 4096, 64 << 10},
	} {
		t.Run(a.name, func(t *testing.T) {
			s := newStream(a.prefix, a.unit, attackSize)
			var err error
			d, alloc := measure(func() { _, err = c.XMLToJSONReader(s) })
			bodyErr(t, a.name, a.kind, a.want, err)
			t.Logf("%s: refused in %v after reading %d bytes, %d KiB allocated: %v", a.name, d, s.read, alloc>>10, err)
			if s.read > a.maxRead {
				t.Errorf("read %d bytes, want at most %d", s.read, a.maxRead)
			}
			if alloc > a.maxAlloc+allocSlack {
				t.Errorf("allocated %d bytes, want at most %d", alloc, a.maxAlloc+allocSlack)
			}
			if d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestXMLDeepNestingBytes: 10,000 levels as one []byte are refused at the
// 65th, without reading further.
func TestXMLDeepNestingBytes(t *testing.T) {
	in := []byte(strings.Repeat("<a>", 10_000) + strings.Repeat("</a>", 10_000))
	var err error
	d, alloc := measure(func() { _, err = XMLToJSON(in, Options{}) })
	bodyErr(t, "deep", KindLimit, "line 1, column 196: elements nested deeper than 64", err)
	t.Logf("10,000-deep XML refused in %v, %d KiB allocated", d, alloc>>10)
	if alloc > 256<<10 {
		t.Errorf("allocated %d bytes", alloc)
	}
	// Over MaxBytes, a []byte is refused before it is looked at.
	big := bytes.Repeat([]byte("x"), 2*mib)
	d, alloc = measure(func() { _, err = XMLToJSON(big, Options{}) })
	bodyErr(t, "big", KindLimit, "larger than 1048576 bytes", err)
	if alloc > 4<<10 || d > 100*time.Millisecond {
		t.Errorf("2 MiB refused in %v with %d bytes allocated", d, alloc)
	}
}

// TestJSONAttacks: the same bounds on the JSON side, and the one attack
// JSON → XML has of its own: a long key repeated by an array of small
// values grows the XML far past the body (an amplification), stopped by
// MaxOutputBytes.
func TestJSONAttacks(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		name, prefix, unit string
		kind               Kind
		want               string
		maxAlloc           uint64
	}{
		{"endless array", "[", "0,", KindLimit, "larger than 1048576 bytes", 8 * mib},
		{"endless string", `"`, "lol ", KindLimit, "larger than", 8 * mib},
		{"endless nesting", "", "[", KindLimit, "larger than", 8 * mib},
	} {
		t.Run(a.name, func(t *testing.T) {
			s := newStream(a.prefix, a.unit, attackSize)
			var err error
			d, alloc := measure(func() { _, err = c.JSONToXMLReader(s) })
			bodyErr(t, a.name, a.kind, a.want, err)
			t.Logf("%s: refused in %v after reading %d bytes, %d KiB allocated", a.name, d, s.read, alloc>>10)
			if s.read > mib+1 {
				t.Errorf("read %d bytes", s.read)
			}
			if alloc > a.maxAlloc+allocSlack {
				t.Errorf("allocated %d bytes, want at most %d", alloc, a.maxAlloc+allocSlack)
			}
		})
	}

	deep := []byte(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000))
	d, alloc := measure(func() { _, err = c.JSONToXML(deep) })
	bodyErr(t, "deep", KindLimit, "column 65: arrays and objects nested deeper than 64", err)
	t.Logf("10,000-deep JSON refused in %v, %d KiB allocated", d, alloc>>10)
	if alloc > 64<<10 {
		t.Errorf("allocated %d bytes", alloc)
	}

	// 99,000 zeros under a 40 KiB key: each 2-byte item would become an
	// 80 KiB element, 8 GB of XML in all.
	key := strings.Repeat("k", 40<<10)
	amp := []byte(`{"` + key + `":[` + strings.Repeat("0,", 99_000) + `0]}`)
	d, alloc = measure(func() { _, err = c.JSONToXML(amp) })
	bodyErr(t, "amplification", KindLimit, "converted body is larger than 8388608 bytes", err)
	t.Logf("amplification (%d KiB → 8 GB) refused in %v, %d KiB allocated", len(amp)>>10, d, alloc>>10)
	// About 250 bytes per value read (99,000) and twice MaxOutputBytes.
	if alloc > 64*mib {
		t.Errorf("allocated %d bytes", alloc)
	}
}

func TestLimitReader(t *testing.T) {
	for _, size := range []int64{0, 1, 63, 64, 65, 1000} {
		lr := &limitReader{r: newStream("", "x", size), n: 65}
		got, err := io.ReadAll(lr)
		switch {
		case size <= 64 && (err != nil || int64(len(got)) != size):
			t.Errorf("size %d: %d bytes, %v", size, len(got), err)
		case size > 64 && (!errors.Is(err, errTooLarge) || len(got) > 64 || !lr.hit):
			t.Errorf("size %d: %d bytes, %v", size, len(got), err)
		}
	}
}

// allocSlack is what the process may allocate beside the code measured
// (measure reads the whole process's allocations: the runtime, a timer, the
// test framework): an endless string reached exactly its 8 MiB bound plus
// 8 bytes once in a CI run.
const allocSlack = 64 << 10
