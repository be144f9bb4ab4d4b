package jsonx_test

import (
	"encoding/json"
	"fmt"

	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

func Example() {
	p, err := jsonx.Compile(jsonx.Spec{
		Deny: []string{"user.password", "items[].internal"},
		Ops: []jsonx.Op{
			{Kind: "rename", Path: "id", Key: "order_id"},
			{Kind: "move", From: "items[].price.amount", To: "items[].amount"},
			{Kind: "delete", Path: "items[].price"},
			{Kind: "set", Path: "meta.consumer", Var: "consumer"},
			{Kind: "set", Path: "meta.version", Value: json.RawMessage(`1`)},
			{Kind: "wrap", Key: "data"},
		},
	})
	if err != nil {
		panic(err)
	}
	body := []byte(`{"id": 9007199254740993, "user": {"name": "Ada", "password": "x"},
		"items": [{"sku": "A", "price": {"amount": 0.10, "cur": "EUR"}, "internal": 1}]}`)
	out, err := p.Apply(body, jsonx.MapVars{"consumer": "acme"}, jsonx.Limits{MaxBytes: 1 << 20})
	fmt.Println(string(out), err)

	_, err = p.Apply([]byte(`{"id": 1,}`), nil, jsonx.Limits{})
	fmt.Println(err)
	// Output:
	// {"data":{"order_id":9007199254740993,"user":{"name":"Ada"},"items":[{"sku":"A","amount":0.10}],"meta":{"consumer":"acme","version":1}}} <nil>
	// invalid JSON at offset 9: unexpected '}', expected a string key
}
