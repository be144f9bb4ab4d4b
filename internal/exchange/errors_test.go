package exchange

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/config.md's error table from Kinds")

const (
	docsPath   = "../../docs/config.md"
	tableBegin = "<!-- errors:begin (generated from internal/exchange.Kinds: go test ./internal/exchange -update) -->"
	tableEnd   = "<!-- errors:end -->"
)

// errorTable renders Kinds as the markdown table of docs/config.md.
func errorTable() string {
	var b strings.Builder
	b.WriteString("| status | `error` | name | when |\n|---|---|---|---|\n")
	for _, k := range Kinds {
		b.WriteString("| " + strconv.Itoa(k.Status) + " | `" + k.Text + "` | `" + k.Name + "` | " + k.When + " |\n")
	}
	return b.String()
}

// TestErrorTable keeps the documented errors and the ones the proxy can
// write the same: the table in docs/config.md is generated from Kinds.
func TestErrorTable(t *testing.T) {
	data, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no error table between %q and %q", docsPath, tableBegin, tableEnd)
	}
	want := tableBegin + "\n" + errorTable() + tableEnd
	if doc[i:j+len(tableEnd)] == want {
		return
	}
	if *update {
		if err := os.WriteFile(docsPath, []byte(doc[:i]+want+doc[j+len(tableEnd):]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's error table differs from Kinds; run go test ./internal/exchange -update", docsPath)
}

func TestKindsAreUnique(t *testing.T) {
	names := map[string]bool{}
	for _, k := range Kinds {
		if names[k.Name] {
			t.Errorf("two kinds named %q", k.Name)
		}
		names[k.Name] = true
		if k.Status < 400 || k.Status > 599 || k.Text == "" || k.When == "" {
			t.Errorf("kind %q is incomplete: %+v", k.Name, k)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	x := &Exchange{RequestID: "r-1"}
	w.Header().Set("Retry-After", "3")
	Write(Recorder(w, x), x, RateLimited)
	if w.Code != 429 || x.Status != 429 || x.Error != RateLimited || x.Reason != "rate limited" {
		t.Fatalf("code %d, exchange %+v", w.Code, x)
	}
	var body struct {
		Status    int    `json:"status"`
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Status != 429 || body.Error != "rate limited" || body.RequestID != "r-1" {
		t.Fatalf("body %+v", body)
	}
	if w.Header().Get("Retry-After") != "3" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", w.Header())
	}
}

func TestWriteGRPC(t *testing.T) {
	w := httptest.NewRecorder()
	x := &Exchange{GRPC: true}
	WriteReason(Recorder(w, x), x, InvalidToken, "invalid token: expired")
	if w.Code != http.StatusOK || w.Header().Get("Grpc-Status") != "16" || x.Status != 401 {
		t.Fatalf("code %d grpc-status %q exchange status %d", w.Code, w.Header().Get("Grpc-Status"), x.Status)
	}
}
