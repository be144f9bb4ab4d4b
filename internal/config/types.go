package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "250ms", "5s", "1m30s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return posErrorf(n, "expected a duration such as \"5s\"")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return posErrorf(n, "invalid duration %q (use a number with a unit: 250ms, 5s, 1m)", n.Value)
	}
	if v < 0 {
		return posErrorf(n, "duration %q must not be negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in Go syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ByteSize is a size in bytes written as a number or with a unit: 512,
// "64KiB", "10MiB", "1GiB" (also KB/MB/GB as powers of 1000).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses the forms accepted by ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size")
	}
	return ByteSize(v * mult), nil
}

// UnmarshalYAML parses a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return posErrorf(n, "expected a size such as 1MiB")
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return posErrorf(n, "invalid size %q (use bytes or a unit: 64KiB, 10MiB)", n.Value)
	}
	*b = v
	return nil
}

// BodyLimit is a request body limit (max_body_bytes): a size, or
// "unlimited" (Unlimited); 0 takes the default.
type BodyLimit int64

// Unlimited is the BodyLimit of "unlimited".
const Unlimited BodyLimit = -1

// DefaultEdgeMaxBodyBytes is an edge's server.max_body_bytes when its file
// sets none: a gateway bounds what a client can make it carry (nginx
// defaults to 1 MiB; 10 MiB leaves room for ordinary uploads).
const DefaultEdgeMaxBodyBytes BodyLimit = 10 << 20

// UnmarshalYAML parses a size or "unlimited".
func (b *BodyLimit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "unlimited" {
		*b = Unlimited
		return nil
	}
	var s ByteSize
	if err := s.UnmarshalYAML(n); err != nil {
		return posErrorf(n, "invalid size %q (use bytes, a unit — 64KiB, 10MiB — or unlimited)", n.Value)
	}
	*b = BodyLimit(s)
	return nil
}

// MarshalYAML writes "unlimited" back as such.
func (b BodyLimit) MarshalYAML() (any, error) {
	if b == Unlimited {
		return "unlimited", nil
	}
	return int64(b), nil
}

// Bytes is the limit in bytes, 0 for none.
func (b BodyLimit) Bytes() int64 { return max(int64(b), 0) }

// posError is an error at a position of the file being loaded; Load adds the
// file name.
type posError struct {
	Line, Col int
	Msg       string
}

func (e *posError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

func posErrorf(n *yaml.Node, format string, args ...any) error {
	return &posError{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
}
