package jsonx

// writer serialises the tree. Most of what it writes is bytes of the
// filtered body in their order: consecutive spans of the body, and the
// separators between them when the body has the same byte there, are
// gathered into one run (src[a:b]) and copied at once, so that the parts
// no op changed cost a copy rather than an append per token.
type writer struct {
	out  []byte
	src  []byte
	a, b int // pending run of src
}

func (w *writer) flush() {
	w.out = append(w.out, w.src[w.a:w.b]...)
	w.a, w.b = 0, 0
}

// span writes src[a:b].
func (w *writer) span(a, b int) {
	if a != w.b {
		w.flush()
		w.a = a
	}
	w.b = b
}

// byte writes c, which the body may have next to the pending run.
func (w *writer) byte(c byte) {
	if w.b > w.a && w.b < len(w.src) && w.src[w.b] == c {
		w.b++
		return
	}
	w.flush()
	w.out = append(w.out, c)
}

// bytes writes b, which is not from src.
func (w *writer) bytes(b []byte) {
	w.flush()
	w.out = append(w.out, b...)
}

func (w *writer) len() int { return len(w.out) + w.b - w.a }

// emit writes bytes of buffer in.
func (d *doc) emit(w *writer, in uint8, s span) {
	if in == inSrc {
		w.span(int(s.off), int(s.end))
		return
	}
	w.bytes(d.buf(in)[s.off:s.end])
}

// write writes node c compact. It stops early once the output is over max
// (> 0); the caller checks the length.
func (d *doc) write(w *writer, c int32, max int) {
	n := &d.n[c]
	if n.kind == kScalar || n.first == unexpanded {
		d.emit(w, n.rawIn, n.raw)
		return
	}
	obj := n.kind == kObject
	switch {
	case n.rawIn == inSrc && n.tix >= 0: // expanded from the body
		w.span(int(n.raw.off), int(n.raw.off)+1)
	case obj:
		w.byte('{')
	default:
		w.byte('[')
	}
	for m := n.first; m >= 0; m = d.n[m].next {
		if m != n.first {
			w.byte(',')
		}
		if obj {
			d.emit(w, d.n[m].keyIn, d.n[m].key)
			w.byte(':')
		}
		d.write(w, m, max)
		if max > 0 && w.len() > max {
			return
		}
	}
	if obj {
		w.byte('}')
	} else {
		w.byte(']')
	}
}
