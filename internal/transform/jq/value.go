package jq

import (
	"bytes"
	"encoding"
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"unicode/utf8"
)

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
	if w, ok := namedStringSlices(v); ok {
		return w, nil
	}
	// Named types (structs...): through JSON.
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

var stringSlicesType = reflect.TypeFor[map[string][]string]()

// namedStringSlices converts a named map[string][]string (http.Header,
// url.Values) to what the JSON round trip in normalize gives — a nil
// map or slice as null — when that is plain: no marshaler of its own,
// and valid UTF-8 throughout (encoding/json would replace the rest).
// Going through JSON costs several times the conversion.
func namedStringSlices(v any) (any, bool) {
	if _, ok := v.(json.Marshaler); ok {
		return nil, false
	}
	if _, ok := v.(encoding.TextMarshaler); ok {
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || !rv.Type().ConvertibleTo(stringSlicesType) {
		return nil, false
	}
	m := rv.Convert(stringSlicesType).Interface().(map[string][]string)
	if m == nil {
		return nil, true
	}
	out := make(map[string]any, len(m))
	for k, ss := range m {
		if !utf8.ValidString(k) {
			return nil, false
		}
		if ss == nil {
			out[k] = nil
			continue
		}
		a := make([]any, len(ss))
		for i, s := range ss {
			if !utf8.ValidString(s) {
				return nil, false
			}
			a[i] = s
		}
		out[k] = a
	}
	return out, true
}
