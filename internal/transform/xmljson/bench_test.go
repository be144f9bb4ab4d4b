package xmljson

import (
	"fmt"
	"strings"
	"testing"
)

// benchXML is a 1 KiB order: namespaces, attributes, a list, text.
var benchXML = func() string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<order xmlns:m="urn:example:meta" id="A-1001" status="shipped">`)
	b.WriteString(`<customer><name>Ada Lovelace</name><email>ada@example.com</email></customer>`)
	b.WriteString(`<items>`)
	for i := 1; b.Len() < 900; i++ {
		fmt.Fprintf(&b, `<item sku="SKU-%04d" qty="%d"><title>Widget &amp; gadget %d</title><price currency="EUR">%d.99</price></item>`, i, i%3+1, i, 10+i)
	}
	b.WriteString(`</items><m:note>Leave at the door</m:note><total>1234.56</total></order>`)
	return b.String()
}()

var benchJSON = func() string {
	out, err := XMLToJSON([]byte(benchXML), Options{})
	if err != nil {
		panic(err)
	}
	return string(out)
}()

func BenchmarkXMLToJSON1KiB(b *testing.B) {
	c, _ := New(Options{ArrayPaths: []string{"order.items.item"}})
	in := []byte(benchXML)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.XMLToJSON(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONToXML1KiB(b *testing.B) {
	c, _ := New(Options{})
	in := []byte(benchJSON)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.JSONToXML(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchDocuments(t *testing.T) {
	for _, s := range []string{benchXML, benchJSON} {
		if len(s) < 900 || len(s) > 1200 {
			t.Errorf("bench document of %d bytes, want about 1 KiB", len(s))
		}
	}
	back, err := JSONToXML([]byte(benchJSON), Options{})
	if err != nil || wellFormed(back) != nil {
		t.Fatalf("%s, %v", back, err)
	}
}
