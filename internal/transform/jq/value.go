package jq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"

	"github.com/itchyny/gojq"
)

// maxNumberLen bounds the length of a number literal in the input. gojq
// keeps an untouched json.Number as its text, but arithmetic or a
// comparison parses it (as *big.Int for an integer), which is quadratic
// in the number of digits; no API body needs thousands of digits.
const maxNumberLen = 1000

// decode parses body as exactly one JSON value, numbers as json.Number
// (which gojq accepts as is; see the package documentation).
func decode(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty body", ErrInvalidInput)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: unexpected end of input", ErrInvalidInput)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the first value (offset %d)", ErrInvalidInput, dec.InputOffset())
	}
	if err := checkNumbers(v); err != nil {
		return nil, err
	}
	return v, nil
}

func checkNumbers(v any) error {
	switch v := v.(type) {
	case json.Number:
		if len(v) > maxNumberLen {
			return fmt.Errorf("%w: a number has %d characters, limit %d", ErrInvalidInput, len(v), maxNumberLen)
		}
	case []any:
		for _, e := range v {
			if err := checkNumbers(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range v {
			if err := checkNumbers(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// normalize converts a variable's value to the types gojq handles (nil,
// bool, int, float64, *big.Int, json.Number, string, []any,
// map[string]any). Values already of those types are not copied.
func normalize(v any) (any, error) {
	if plain(v) {
		return v, nil
	}
	switch v := v.(type) {
	case int8:
		return int(v), nil
	case int16:
		return int(v), nil
	case int32:
		return int(v), nil
	case int64:
		return int64ToValue(v), nil
	case uint8:
		return int(v), nil
	case uint16:
		return int(v), nil
	case uint32:
		return int64ToValue(int64(v)), nil
	case uint:
		return uint64ToValue(uint64(v)), nil
	case uint64:
		return uint64ToValue(v), nil
	case float32:
		return float64(v), nil
	case json.RawMessage:
		var w any
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if err := d.Decode(&w); err != nil {
			return nil, err
		}
		return w, nil
	case []string:
		a := make([]any, len(v))
		for i, s := range v {
			a[i] = s
		}
		return a, nil
	case map[string]string:
		m := make(map[string]any, len(v))
		for k, s := range v {
			m[k] = s
		}
		return m, nil
	case map[string][]string: // url.Values and http.Header convert here
		m := make(map[string]any, len(v))
		for k, ss := range v {
			a := make([]any, len(ss))
			for i, s := range ss {
				a[i] = s
			}
			m[k] = a
		}
		return m, nil
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			var err error
			if a[i], err = normalize(e); err != nil {
				return nil, err
			}
		}
		return a, nil
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			var err error
			if m[k], err = normalize(e); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	// Named types (http.Header, url.Values, structs...): through JSON.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var w any
	if err := d.Decode(&w); err != nil {
		return nil, err
	}
	return w, nil
}

func int64ToValue(v int64) any {
	if math.MinInt <= v && v <= math.MaxInt {
		return int(v)
	}
	return big.NewInt(v)
}

func uint64ToValue(v uint64) any {
	if v <= math.MaxInt {
		return int(v)
	}
	return new(big.Int).SetUint64(v)
}

// plain reports whether v holds only types gojq handles.
func plain(v any) bool {
	switch v := v.(type) {
	case nil, bool, int, string, json.Number, *big.Int:
		return true
	case float64:
		return true
	case []any:
		for _, e := range v {
			if !plain(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range v {
			if !plain(e) {
				return false
			}
		}
		return true
	}
	return false
}

// encode writes v as compact JSON (gojq's encoder: object keys sorted,
// NaN as null, infinities as ±1.7976931348623157e+308), refusing output
// over limit bytes without building it.
func encode(v any, limit int) ([]byte, error) {
	if n := minSize(v, limit); n > limit {
		return nil, fmt.Errorf("%w: output is over %d bytes", ErrTooLarge, limit)
	}
	b, err := gojq.Marshal(v)
	if err != nil {
		return nil, &RunError{Msg: err.Error()}
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%w: output is %d bytes, limit %d", ErrTooLarge, len(b), limit)
	}
	return b, nil
}

// minSize returns a lower bound of v's encoded size, stopping as soon as
// it exceeds limit: a value may share subtrees (reduce range(40) as $i
// (0; [., .]) takes 40 steps), so its encoding can be far larger than
// the memory it holds.
func minSize(v any, limit int) int {
	var n int
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case nil, bool:
			n += 4
		case int, float64:
			n++
		case json.Number:
			n += len(v)
		case *big.Int:
			n += v.BitLen()*3/10 + 1
		case string:
			n += len(v) + 2
		case []any:
			n += 1 + len(v)
			for _, e := range v {
				if n > limit || !walk(e) {
					return false
				}
			}
		case map[string]any:
			n += 1 + 2*len(v)
			for k, e := range v {
				n += len(k) + 2
				if n > limit || !walk(e) {
					return false
				}
			}
		}
		return n <= limit
	}
	walk(v)
	return n
}
