package xmljson

import (
	"errors"
	"fmt"
	"strings"
)

// Defaults for the zero Options fields.
const (
	DefaultRoot        = "root"
	DefaultMaxBytes    = 1 << 20
	DefaultMaxDepth    = 64
	DefaultMaxElements = 100_000
	// DefaultMaxAttributes bounds the attributes of one element.
	DefaultMaxAttributes = 256
	// DefaultOutputFactor: MaxOutputBytes defaults to this many times
	// MaxBytes.
	DefaultOutputFactor = 8
)

// Options shape a conversion. The zero value is usable: every zero field
// takes its default.
type Options struct {
	// Root names the root element of XML written from JSON that is not an
	// object with one key (default "root").
	Root string
	// ArrayPaths are element paths from the root, names joined by dots
	// ("order.items.item", prefixes as written: "soap:Envelope.soap:Body"),
	// whose elements XMLToJSON always writes as arrays, even when there is
	// only one. The root element itself is never an array.
	ArrayPaths []string
	// MaxBytes bounds the body read (default 1 MiB).
	MaxBytes int
	// MaxDepth bounds element nesting in XML and array/object nesting in
	// JSON (default 64).
	MaxDepth int
	// MaxElements bounds the elements plus attributes of XML read, and the
	// values (each object member and array item) of JSON read (default
	// 100,000).
	MaxElements int
	// MaxAttributes bounds the attributes of one XML element, and the
	// "-name" members of one JSON object (default 256).
	MaxAttributes int
	// MaxOutputBytes bounds what a conversion writes (default 8 ×
	// MaxBytes): a long JSON key repeated by an array of small numbers
	// would otherwise grow the XML far past the body's size.
	MaxOutputBytes int
	// Declaration makes JSONToXML start with
	// <?xml version="1.0" encoding="UTF-8"?>.
	Declaration bool
}

// Converter converts with fixed Options; it is safe for concurrent use.
// New checks the Options once, so a gateway builds one per route at
// configuration time.
type Converter struct {
	o     Options
	root  []byte               // o.Root
	paths map[string]*pathNode // root element name → its path node
}

// pathNode is one element name of ArrayPaths; array marks the end of a
// path.
type pathNode struct {
	array bool
	kids  map[string]*pathNode
}

// New checks o and fills in its defaults.
func New(o Options) (*Converter, error) {
	var names nameChecker
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if !names.qname(o.Root) {
		return nil, fmt.Errorf("xmljson: root %s is not an XML element name", short(o.Root))
	}
	for _, v := range []struct {
		name string
		p    *int
		def  int
	}{
		{"max bytes", &o.MaxBytes, DefaultMaxBytes},
		{"max depth", &o.MaxDepth, DefaultMaxDepth},
		{"max elements", &o.MaxElements, DefaultMaxElements},
		{"max attributes", &o.MaxAttributes, DefaultMaxAttributes},
		{"max output bytes", &o.MaxOutputBytes, 0},
	} {
		switch {
		case *v.p < 0:
			return nil, fmt.Errorf("xmljson: %s %d is negative", v.name, *v.p)
		case *v.p == 0:
			*v.p = v.def
		}
	}
	if o.MaxOutputBytes == 0 {
		o.MaxOutputBytes = DefaultOutputFactor * o.MaxBytes
		if o.MaxOutputBytes/DefaultOutputFactor != o.MaxBytes { // overflow
			o.MaxOutputBytes = int(^uint(0) >> 1)
		}
	}
	c := &Converter{o: o, root: []byte(o.Root)}
	for _, p := range o.ArrayPaths {
		if err := c.addPath(p, &names); err != nil {
			return nil, err
		}
	}
	o.ArrayPaths = append([]string(nil), o.ArrayPaths...)
	c.o = o
	return c, nil
}

func (c *Converter) addPath(p string, names *nameChecker) error {
	if p == "" {
		return errors.New("xmljson: empty array path")
	}
	segs := strings.Split(p, ".")
	if len(segs) < 2 {
		return fmt.Errorf("xmljson: array path %s names only the root element, which is never an array", short(p))
	}
	m := &c.paths
	var n *pathNode
	for _, s := range segs {
		if !names.qname(s) {
			return fmt.Errorf("xmljson: array path %s: %s is not an XML element name", short(p), short(s))
		}
		if *m == nil {
			*m = make(map[string]*pathNode)
		}
		n = (*m)[s]
		if n == nil {
			n = &pathNode{}
			(*m)[s] = n
		}
		m = &n.kids
	}
	n.array = true
	return nil
}

// Options returns the options in effect, defaults filled in.
func (c *Converter) Options() Options {
	o := c.o
	o.ArrayPaths = append([]string(nil), o.ArrayPaths...)
	return o
}

// XMLToJSON converts an XML document to JSON with o; see
// Converter.XMLToJSON.
func XMLToJSON(in []byte, o Options) ([]byte, error) {
	c, err := New(o)
	if err != nil {
		return nil, err
	}
	return c.XMLToJSON(in)
}

// JSONToXML converts a JSON document to XML with o; see
// Converter.JSONToXML.
func JSONToXML(in []byte, o Options) ([]byte, error) {
	c, err := New(o)
	if err != nil {
		return nil, err
	}
	return c.JSONToXML(in)
}
