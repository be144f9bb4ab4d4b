package xmljson_test

import (
	"fmt"

	"github.com/meshgate/meshgate/internal/transform/xmljson"
)

func ExampleXMLToJSON() {
	in := `<order id="7" xmlns:m="urn:m">
  <m:note><![CDATA[fragile & <urgent>]]></m:note>
  <item sku="a">2</item>
  <item sku="b">1</item>
  <empty/>
</order>`
	out, err := xmljson.XMLToJSON([]byte(in), xmljson.Options{})
	fmt.Println(string(out), err)
	// Output:
	// {"order":{"-id":"7","-xmlns:m":"urn:m","m:note":"fragile & <urgent>","item":[{"-sku":"a","#text":"2"},{"-sku":"b","#text":"1"}],"empty":""}} <nil>
}

func ExampleJSONToXML() {
	in := `{"order":{"-id":7,"total":9007199254740993,"rate":0.1,"big":1e400,"items":[{"sku":"a"},{"sku":"b"}],"gift":null,"paid":true}}`
	out, err := xmljson.JSONToXML([]byte(in), xmljson.Options{})
	fmt.Println(string(out), err)
	// Output:
	// <order id="7"><total>9007199254740993</total><rate>0.1</rate><big>1e400</big><items><sku>a</sku></items><items><sku>b</sku></items><gift/><paid>true</paid></order> <nil>
}

func ExampleOptions_arrayPaths() {
	in := `<order><items><item>a</item></items></order>`
	out, _ := xmljson.XMLToJSON([]byte(in), xmljson.Options{})
	fmt.Println(string(out))
	out, _ = xmljson.XMLToJSON([]byte(in), xmljson.Options{ArrayPaths: []string{"order.items.item"}})
	fmt.Println(string(out))
	// Output:
	// {"order":{"items":{"item":"a"}}}
	// {"order":{"items":{"item":["a"]}}}
}
