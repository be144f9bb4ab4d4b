package introspect

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz seed corpora from decodeSeeds")

// decodeSeeds are answers as Ory Hydra, Keycloak, Okta and Azure AD shape
// them, and near misses of each of decode's checks.
var decodeSeeds = map[string]string{
	"hydra":          `{"active":true,"client_id":"app","sub":"alice","exp":1735693200,"iat":1735689600,"nbf":1735689600,"aud":["api"],"iss":"https://idp/","token_type":"Bearer","token_use":"access_token","scope":"openid offline","ext":{"tenant":"t1"}}`,
	"keycloak":       `{"active":true,"exp":1735693200,"aud":"account","scope":"profile email","client_id":"cli","username":"alice","token_type":"Bearer","sub":"f:1"}`,
	"okta-scp":       `{"active":true,"scp":["read","write"],"aud":"api://default","uid":"00u1"}`,
	"inactive":       `{"active":false}`,
	"active-string":  `{"active":"true"}`,
	"active-number":  `{"active":1}`,
	"refresh":        `{"active":true,"token_use":"refresh_token"}`,
	"exp-fraction":   `{"active":true,"exp":1735693200.5}`,
	"exp-string":     `{"active":true,"exp":"1735693200"}`,
	"exp-negative":   `{"active":true,"exp":-1}`,
	"exp-huge":       `{"active":true,"exp":1e308}`,
	"aud-mixed":      `{"active":true,"aud":["a",2]}`,
	"scope-array":    `{"active":true,"scope":["a"]}`,
	"sub-object":     `{"active":true,"sub":{}}`,
	"nulls":          `{"active":true,"sub":null,"aud":null,"scope":null,"exp":null}`,
	"duplicate":      `{"active":false,"active":true}`,
	"bad-utf8":       "{\"active\":true,\"sub\":\"\xff\xfe\"}",
	"null":           `null`,
	"array":          `[{"active":true}]`,
	"truncated":      `{"active":true,"sub":"al`,
	"trailing":       `{"active":true} {}`,
	"empty":          ``,
	"deep":           `{"active":true,"x":[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]}`,
	"unicode-escape": `{"active":true,"sub":"\u0061\ud800"}`,
}

// FuzzDecode checks decode never panics, never calls a malformed answer
// active, and reads an accepted answer's Raw back to the same Result.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decode(body)
		if err != nil {
			if res != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if res.Active && res.Raw["active"] != true {
			t.Fatalf("active without \"active\": true: %s", body)
		}
		again, err := json.Marshal(res.Raw)
		if err != nil {
			t.Fatalf("Raw does not encode: %v", err)
		}
		res2, err := decode(again)
		if err != nil || !reflect.DeepEqual(res, res2) {
			t.Fatalf("round trip of %s:\n%+v\n%+v, %v", body, res, res2, err)
		}
	})
}

// TestFuzzSeeds checks the committed corpus exists (and rewrites it with
// go test -run TestFuzzSeeds -args -update-fuzz-seeds).
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if *updateSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, seed := range decodeSeeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) < len(decodeSeeds) {
		t.Fatalf("%s: %d seed files (%v), want %d; run go test -run TestFuzzSeeds -args -update-fuzz-seeds", dir, len(files), err, len(decodeSeeds))
	}
	for _, fi := range files {
		b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
		if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\n[]byte(") {
			t.Errorf("%s/%s: not a go test fuzz v1 []byte file", dir, fi.Name())
		}
	}
}
