package introspect

import (
	"reflect"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		want Result // Raw not compared
	}{
		"inactive": {`{"active":false,"sub":"x"}`, Result{}},
		"minimal":  {`{"active":true}`, Result{Active: true}},
		"aud string": {`{"active":true,"aud":"api"}`,
			Result{Active: true, Audience: []string{"api"}}},
		"scope spaces": {`{"active":true,"scope":"  read  write "}`,
			Result{Active: true, Scopes: []string{"read", "write"}}},
		"scp array": {`{"active":true,"scp":["read","write"]}`,
			Result{Active: true, Scopes: []string{"read", "write"}}},
		"scp string": {`{"active":true,"scp":"read write"}`,
			Result{Active: true, Scopes: []string{"read", "write"}}},
		"scope wins": {`{"active":true,"scope":"a","scp":["b"]}`,
			Result{Active: true, Scopes: []string{"a"}}},
		"nulls": {`{"active":true,"sub":null,"aud":null,"exp":null,"scope":null}`,
			Result{Active: true}},
		"exp fraction": {`{"active":true,"exp":1735689600.25}`,
			Result{Active: true, Expiry: time.Unix(1735689600, 250_000_000)}},
		"access token": {`{"active":true,"token_use":"access_token","client_id":"c"}`,
			Result{Active: true, ClientID: "c"}},
		"refresh token": {`{"active":true,"token_use":"refresh_token"}`, Result{}},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := decode([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if res.Raw == nil {
				t.Fatal("no Raw")
			}
			res.Raw = nil
			if !reflect.DeepEqual(*res, tc.want) {
				t.Fatalf("got %+v\nwant %+v", *res, tc.want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, body := range []string{
		``, `null`, `[]`, `"active"`, `{"active":true`, `{"active":true,"exp":-1}`,
		`{"active":true,"exp":1e12}`, `{"active":true,"aud":["a",1]}`,
		`{"active":true,"scp":{}}`, `{"active":true,"token_use":5}`, `{"active":true,"iss":true}`,
	} {
		if res, err := decode([]byte(body)); err == nil {
			t.Errorf("%s: accepted as %+v", body, res)
		}
	}
}
