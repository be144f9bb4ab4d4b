package xmljson

import "bytes"

// markupCounter follows raw XML bytes ahead of encoding/xml and counts
// start tags and their attributes ('=' outside quoted values in a start
// tag). encoding/xml reads a whole start tag, every attribute of it, before
// handing it over, so a tag of a million attributes would be built in
// memory (about 50 bytes for each byte of the tag) before the element
// count could be checked; this counter stops such a tag at
// MaxAttributes, and a flood of elements at MaxElements, as the bytes
// arrive. On well-formed XML its counts are exactly the elements and
// attributes; on anything else encoding/xml reports the error, so a
// mistake here can only refuse early, never let through.
type markupCounter struct {
	state    uint8
	run      uint8 // '-', ']' or '?' just seen, to find "-->", "]]>", "?>"
	count    int   // start tags and attributes
	attrs    int   // attributes of the current start tag
	maxCount int
	maxAttrs int
	// tooMany is set once a limit is passed: "elements" or "attributes".
	tooMany string
}

const (
	mText = iota
	mLt
	mBang
	mBangDash
	mComment
	mCDATA
	mPI
	mEndTag
	mStartTag
	mQuote2
	mQuote1
	mDirective
)

// scan follows b and returns the index of the byte that passed a limit,
// or -1.
func (m *markupCounter) scan(b []byte) int {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch m.state {
		case mText:
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				return -1
			}
			i += j
			m.state = mLt
		case mLt:
			switch c {
			case '!':
				m.state = mBang
			case '?':
				m.state, m.run = mPI, 0
			case '/':
				m.state = mEndTag
			default:
				m.state, m.attrs = mStartTag, 0
				m.count++
				if m.count > m.maxCount {
					m.tooMany = "elements"
					return i
				}
				i-- // the name's first byte, or a stray '>'
			}
		case mBang:
			switch c {
			case '-':
				m.state = mBangDash
			case '[':
				m.state, m.run = mCDATA, 0
			default:
				m.state = mDirective
			}
		case mBangDash:
			if c == '-' {
				m.state, m.run = mComment, 0
			} else {
				m.state = mDirective
			}
		case mComment, mCDATA:
			end := byte('-')
			if m.state == mCDATA {
				end = ']'
			}
			switch {
			case c == end:
				if m.run < 2 {
					m.run++
				}
			case c == '>' && m.run == 2:
				m.state, m.run = mText, 0
			default:
				m.run = 0
			}
		case mPI:
			if c == '>' && m.run == 1 {
				m.state = mText
			}
			m.run = 0
			if c == '?' {
				m.run = 1
			}
		case mEndTag:
			if c == '>' {
				m.state = mText
			}
		case mStartTag:
			switch c {
			case '"':
				m.state = mQuote2
			case '\'':
				m.state = mQuote1
			case '>':
				m.state = mText
			case '=':
				m.attrs++
				m.count++
				switch {
				case m.attrs > m.maxAttrs:
					m.tooMany = "attributes"
					return i
				case m.count > m.maxCount:
					m.tooMany = "elements"
					return i
				}
			}
		case mQuote2:
			if c == '"' {
				m.state = mStartTag
			}
		case mQuote1:
			if c == '\'' {
				m.state = mStartTag
			}
		case mDirective:
			// A DOCTYPE or the like, refused once encoding/xml has read it
			// (within MaxBytes): nothing after it is converted.
			return -1
		}
	}
	return -1
}
