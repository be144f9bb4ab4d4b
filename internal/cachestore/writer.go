package cachestore

import (
	"errors"
	"sync"
)

// ErrWriterClosed is returned by a BodyWriter's Write after Bytes or Discard.
var ErrWriterClosed = errors.New("cachestore: write to a finished BodyWriter")

// chunkSize is the size of the pooled buffers a BodyWriter fills. Chunks
// rather than one growing slice: growth by doubling copies the body over and
// over and leaves up to half of the final array unused, which a stored entry
// would pin.
const chunkSize = 16 << 10

// chunkPool holds the chunks of finished writers. Only the bytes a writer
// wrote are ever read back from a chunk, so leftovers of an earlier response
// never leak into another.
var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// BodyWriter collects a copy of a response body while it streams to the
// client, for storing once it is complete. The cache stage writes each piece
// to the client first and then here, typically with
//
//	bw := cachestore.NewWriter(store.MaxEntryBytes())
//	io.Copy(io.MultiWriter(clientWriter, bw), upstreamBody)
//	if body, ok := bw.Bytes(); ok { ... store.Put(...) }
//
// so nothing is buffered ahead of the client. Write never fails (until the
// writer is finished), so a body too large to store does not cut the
// client's copy short: past the limit the writer marks itself overflowed and
// hands its chunks back to the pool at once, so an uncacheable large body
// costs no memory beyond the limit.
//
// Ownership: the chunks belong to the writer until Bytes or Discard returns
// them to a package-wide pool; the slice Bytes returns is freshly allocated
// (cap == len), owned by the caller and safe to store. Every writer must end
// with Bytes or Discard, or its chunks are left to the garbage collector
// instead of the pool. A BodyWriter is not safe for concurrent use, and
// must not be copied once Init (or NewWriter) has made it.
type BodyWriter struct {
	limit  int64
	n      int64
	chunks []*[chunkSize]byte
	// first backs chunks for a body of one chunk, the usual size, so that
	// such a body costs the writer no allocation of its own.
	first      [1]*[chunkSize]byte
	overflowed bool
	finished   bool
	body       []byte
	ok         bool
}

// NewWriter returns a BodyWriter that keeps at most limit bytes.
func NewWriter(limit int64) *BodyWriter {
	w := new(BodyWriter)
	w.Init(limit)
	return w
}

// Init makes w an empty BodyWriter that keeps at most limit bytes, as
// NewWriter does, for a writer held by value inside another struct. A
// writer that was in use must have been finished (Bytes or Discard) first.
func (w *BodyWriter) Init(limit int64) {
	*w = BodyWriter{limit: max(limit, 0)}
	w.chunks = w.first[:0]
}

// Write copies p, or drops it once the total would pass the limit. It
// reports len(p) written either way, so it can sit in an io.MultiWriter
// next to the client.
func (w *BodyWriter) Write(p []byte) (int, error) {
	if w.finished {
		return 0, ErrWriterClosed
	}
	if w.overflowed {
		return len(p), nil
	}
	if int64(len(p)) > w.limit-w.n {
		w.overflowed = true
		w.n = 0
		w.release()
		return len(p), nil
	}
	for rest := p; len(rest) > 0; {
		off := int(w.n % chunkSize)
		if off == 0 {
			w.chunks = append(w.chunks, chunkPool.Get().(*[chunkSize]byte))
		}
		k := copy(w.chunks[len(w.chunks)-1][off:], rest)
		rest = rest[k:]
		w.n += int64(k)
	}
	return len(p), nil
}

// Len returns the bytes kept so far (0 once overflowed or discarded).
func (w *BodyWriter) Len() int64 { return w.n }

// Overflowed reports whether the body passed the limit.
func (w *BodyWriter) Overflowed() bool { return w.overflowed }

// Bytes finishes the writer and returns the whole body, with ok false if it
// overflowed or was discarded. Later calls return the same result. The
// slice is the caller's (see the type's doc).
func (w *BodyWriter) Bytes() ([]byte, bool) {
	if !w.finished {
		w.finished = true
		if !w.overflowed {
			w.body = make([]byte, w.n)
			off := 0
			for _, c := range w.chunks {
				off += copy(w.body[off:], c[:])
			}
			w.ok = true
		}
		w.release()
	}
	return w.body, w.ok
}

// Discard finishes the writer without a body (the response turned out not
// to be storable, or the copy failed) and returns its chunks to the pool.
func (w *BodyWriter) Discard() {
	w.finished = true
	w.body, w.ok, w.n = nil, false, 0
	w.release()
}

// release returns the chunks to the pool.
func (w *BodyWriter) release() {
	for i, c := range w.chunks {
		chunkPool.Put(c)
		w.chunks[i] = nil
	}
	w.chunks = w.chunks[:0]
}
