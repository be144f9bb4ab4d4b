// Package xmljson converts bodies between XML and JSON for the gateway:
// an XML backend's answer to JSON for a client that asks for JSON, a JSON
// backend's answer to XML for a legacy client, a client's XML request to
// JSON for the backend. Both ways are bounded and refuse hostile XML.
//
// # Convention
//
// The mapping is the one of github.com/clbanning/mxj's defaults (KrakenD's
// "xml" encoding), a "BadgerFish-lite", so that configurations and clients
// written for KrakenD read the same JSON:
//
//   - The document is an object with one key, the root element's name.
//   - An element with neither attributes nor child elements is a string,
//     its text exactly as written (white space kept; "" when empty).
//   - Otherwise it is an object, in document order: attributes as "-name"
//     keys, then its text as "#text" (left out when only white space), then
//     its child elements keyed by name.
//   - Repeated child elements with the same name form one array, at the
//     place of the first; Options.ArrayPaths makes an element an array even
//     when it occurs once (schemas with maxOccurs > 1).
//   - Names keep their prefix as written ("soap:Envelope"), and namespace
//     declarations are attributes like any other ("-xmlns:soap"); prefixes
//     are not resolved.
//   - CDATA sections are text; entity and character references are
//     replaced (&amp; → &, &#x1F600; → 😀); comments and processing
//     instructions are dropped.
//   - Mixed content (text between child elements) keeps its text runs,
//     trimmed and joined by one space, in "#text": where the text stood
//     among the children is lost, as with mxj.
//   - Values stay strings: XML text is text, and guessing numbers or
//     booleans ("007", "1e3", "true") would change data. A JSON consumer
//     that wants a number converts it (jq: tonumber).
//
// For example
//
//	<order id="7" xmlns:m="urn:m">
//	  <m:note><![CDATA[fragile & <urgent>]]></m:note>
//	  <item sku="a">2</item>
//	  <item sku="b">1</item>
//	  <empty/>
//	</order>
//
// is
//
//	{"order":{"-id":"7","-xmlns:m":"urn:m","m:note":"fragile & <urgent>",
//	 "item":[{"-sku":"a","#text":"2"},{"-sku":"b","#text":"1"}],"empty":""}}
//
// JSON → XML is the inverse: an object with one key whose value is not an
// array is the root element; any other document (several keys, an array,
// a scalar) becomes the content of Options.Root ("root"). Within an
// object, "-name" members are attributes (null ones left out; arrays and
// objects refused), "#text" is text, other members are child elements —
// an array gives one element per item, an empty array none. An array
// directly inside an array (or at the top) gives <item> elements. null and
// "" give an empty element (<a/>); true, false and numbers are written as
// their JSON text, numbers byte for byte as the input has them (no float64
// on the way: 9007199254740993, 0.1 and 1e400 stay as they are). Member
// order is kept both ways. Keys that are not XML names ("first name",
// "1st", "a:b:c", "") are refused with a BodyError rather than escaped:
// escaping (_x0020_ and the like) would be a convention no client expects,
// and such keys usually mean a map keyed by data, which has no XML shape.
// Names are checked as Go's encoding/xml reads them (XML 1.0 4th edition
// letters, stricter than the 5th: "Ș" is refused), so that the XML written
// is read back by Go and by older parsers. Characters XML 1.0 cannot carry
// at all (U+0000–U+001F but tab, LF and CR; U+FFFE, U+FFFF) are refused.
// No XML declaration is written unless Options.Declaration is set.
//
// Round trips: XML → JSON → XML gives the same elements, attributes and
// text in the same order, except that repeated elements that were not
// adjacent come out together, mixed content is regrouped as above, and
// comments and processing instructions are gone.
//
// # Limits and hostile XML
//
// Both directions check, while reading and before building anything large:
// Options.MaxBytes (default 1 MiB) of body; Options.MaxDepth (64) levels of
// elements, or of JSON arrays and objects; Options.MaxElements (100,000)
// elements plus attributes, or JSON values; Options.MaxAttributes (256) on
// one element; and Options.MaxOutputBytes (8 × MaxBytes) of output, which
// stops JSON whose long keys, repeated by arrays of small values, would
// grow into gigabytes of XML. encoding/xml reads a whole start tag before
// returning it, so the raw bytes are also followed ahead of it (a small
// state machine that counts start tags and the '=' of attributes outside
// quotes, comments, CDATA and processing instructions): a tag of a million
// attributes is stopped at the 257th, not built. Allocation is therefore
// bounded by a few times MaxBytes, plus about 300 bytes per element or
// JSON value (MaxElements), plus twice MaxOutputBytes. The Reader forms
// read at most MaxBytes+1 bytes and stop at the first problem: a 100 MB
// stream costs what its first MiB costs, a 10,000-deep nesting or a
// DOCTYPE what its first 4 KiB cost.
//
// XML → JSON → XML with the same Options can need a larger MaxDepth on the
// JSON side: an array is one more level of JSON than of XML.
//
// No DTD is ever processed: a DOCTYPE (or any other <!…> declaration) is
// refused outright, so no entity can be declared and no billion-laughs or
// external-entity (XXE) shape gets through; an undeclared entity such as
// &foo; is a syntax error. Only UTF-8 is read: a declared encoding other
// than UTF-8 or US-ASCII, or a UTF-16 byte order mark, is refused; a UTF-8
// byte order mark is skipped. Repeated attributes, a second root element,
// text outside the root and names that are not namespace-well-formed
// (a:b:c) are refused. All these are *BodyError values, whose text is
// short, gives the line, column and offset, and is safe to show a client;
// Kind sorts them into syntax, limit and unsupported.
//
// # Library choice
//
// The conversion is written on encoding/xml's tokenizer (Decoder.RawToken)
// and a small JSON reader of its own (whose strings and numbers are read by
// jsonx's scanners), not on github.com/clbanning/mxj, whose convention it
// keeps. mxj goes through map[string]interface{}, so
// it loses element and key order both ways (and its JSON output is sorted
// by key); it reads JSON with encoding/json into float64 unless a global
// switch is set; its XML reader is recursive with no depth or element
// bound; and its options are package globals, shared by every route. The
// JSON reader here keeps number literals and member order, and bounds depth
// and size as it reads; its grammar is checked against encoding/json by
// FuzzJSONToXML. encoding/xml allocates for every token (names, attribute
// values, the token itself): it is most of the cost of XML → JSON, whose
// own elements, attributes and texts are kept in pooled slabs.
package xmljson
