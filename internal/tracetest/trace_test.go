package tracetest

import (
	"bytes"
	"testing"
	"time"
)

// A response of the query API as Jaeger v1.76 writes it, with the loose
// spots a decoder meets: every tag type, a number as a string, an
// OpenTelemetry array flattened to a JSON string, a span whose parent is
// missing, a link (FOLLOWS_FROM).
const traceJSON = `{"data":[{"traceID":"5b8efff798038103d269b633813fc60c","spans":[
 {"traceID":"5b8efff798038103d269b633813fc60c","spanID":"00000000000000c1","operationName":"child",
  "references":[{"refType":"CHILD_OF","traceID":"5b8efff798038103d269b633813fc60c","spanID":"00000000000000a1"}],
  "startTime":1700000000100000,"duration":100000,
  "tags":[{"key":"error","type":"bool","value":true},{"key":"otel.status_code","type":"string","value":"ERROR"}],
  "logs":[{"timestamp":1700000000150000,"fields":[{"key":"event","type":"string","value":"retry"},{"key":"attempt","type":"int64","value":2}]}],
  "processID":"p1","warnings":null},
 {"traceID":"5b8efff798038103d269b633813fc60c","spanID":"00000000000000a1","operationName":"root","references":[],
  "startTime":1700000000000000,"duration":1000000,
  "tags":[{"key":"arr","type":"string","value":"[\"a\"]"},{"key":"b","type":"bool","value":true},
   {"key":"bytes","type":"binary","value":"AQI="},{"key":"f","type":"float64","value":1.5},
   {"key":"i","type":"int64","value":1152921504606846977},{"key":"s","type":"int64","value":"7"},
   {"key":"u","type":"mystery","value":{"x":1}}],
  "logs":[],"processID":"p1","warnings":null},
 {"traceID":"5b8efff798038103d269b633813fc60c","spanID":"00000000000000f1","operationName":"orphan",
  "references":[{"refType":"FOLLOWS_FROM","traceID":"5b8efff798038103d269b633813fc60c","spanID":"00000000000000a1"},
   {"refType":"CHILD_OF","traceID":"5b8efff798038103d269b633813fc60c","spanID":"00000000000000ee"}],
  "startTime":"1700000000200000","duration":5.0,"tags":null,"processID":"p2"}],
 "processes":{"p1":{"serviceName":"orders","tags":[{"key":"service.version","type":"string","value":"1.2.3"}]},
  "p2":{"serviceName":"billing","tags":[]}},"warnings":null}],
 "total":0,"limit":0,"offset":0,"errors":null}`

func TestDecodeTrace(t *testing.T) {
	var r apiResponse
	if err := unmarshal([]byte(traceJSON), &r); err != nil {
		t.Fatal(err)
	}
	var data []jsonTrace
	if err := unmarshal(r.Data, &data); err != nil {
		t.Fatal(err)
	}
	tr := convertTrace(data[0])

	if got := len(tr.Spans); got != 3 {
		t.Fatalf("%d spans", got)
	}
	if tr.Spans[0].OperationName != "root" || tr.Spans[2].OperationName != "orphan" {
		t.Errorf("spans not ordered by start:\n%s", tr)
	}
	root, child, orphan := tr.SpanByName("root"), tr.SpanByName("child"), tr.SpanByName("orphan")
	if tr.Parent(child) != root || tr.Parent(root) != nil || tr.Parent(orphan) != nil || orphan.ParentSpanID != "00000000000000ee" {
		t.Errorf("parents wrong:\n%s", tr)
	}
	if kids := tr.Children(root); len(kids) != 1 || kids[0] != child {
		t.Errorf("Children(root) = %v", kids)
	}
	if roots := tr.Roots(); len(roots) != 2 || roots[0] != root || roots[1] != orphan {
		t.Errorf("Roots() = %v", roots)
	}
	if len(orphan.References) != 2 || orphan.References[0].Type != "FOLLOWS_FROM" {
		t.Errorf("orphan references = %v", orphan.References)
	}
	if root.Service != "orders" || orphan.Service != "billing" || root.ProcessTags["service.version"] != "1.2.3" {
		t.Errorf("services: %q %q %v", root.Service, orphan.Service, root.ProcessTags)
	}
	if got := tr.Services(); len(got) != 2 || got[0] != "billing" || got[1] != "orders" {
		t.Errorf("Services() = %v", got)
	}
	for k, want := range map[string]any{
		"arr": `["a"]`, "b": true, "f": 1.5, "i": int64(1<<60 + 1), "s": int64(7),
	} {
		if got := root.Tags[k]; got != want {
			t.Errorf("tag %s = %#v, want %#v", k, got, want)
		}
	}
	if got, ok := root.Tags["bytes"].([]byte); !ok || !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("binary tag = %#v", root.Tags["bytes"])
	}
	if _, ok := root.Tags["u"].(map[string]any); !ok {
		t.Errorf("unknown-typed tag = %#v, want the decoded object", root.Tags["u"])
	}
	if want := time.UnixMicro(1700000000000000); !root.Start.Equal(want) || root.Duration != time.Second {
		t.Errorf("root time %v+%v", root.Start, root.Duration)
	}
	if want := time.UnixMicro(1700000000200000); !orphan.Start.Equal(want) || orphan.Duration != 5*time.Microsecond {
		t.Errorf("orphan time %v+%v (numbers as string and float)", orphan.Start, orphan.Duration)
	}
	if len(child.Logs) != 1 || child.Logs[0].Fields["attempt"] != int64(2) || child.Logs[0].Fields["event"] != "retry" ||
		!child.Logs[0].Time.Equal(time.UnixMicro(1700000000150000)) {
		t.Errorf("child logs = %+v", child.Logs)
	}
	if tr.SpanByName("nope") != nil || tr.Children(nil) != nil {
		t.Error("lookups of nothing found something")
	}
	t.Logf("\n%s", tr)
}
