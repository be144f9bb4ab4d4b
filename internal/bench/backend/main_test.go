package main

import (
	"encoding/json"
	"testing"
)

func TestJSONBody(t *testing.T) {
	b, err := jsonBody("127.0.0.1:18000", 1024)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Server string `json:"server"`
		Pad    string `json:"pad"`
	}
	if len(b) != 1024 || json.Unmarshal(b, &doc) != nil || doc.Server != "127.0.0.1:18000" || doc.Pad == "" {
		t.Errorf("body of %d bytes: %.80s", len(b), b)
	}
	if _, err := jsonBody("127.0.0.1:18000", 20); err == nil {
		t.Error("size 20: no error")
	}
}
