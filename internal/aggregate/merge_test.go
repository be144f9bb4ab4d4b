package aggregate

import (
	"strconv"
	"strings"
	"testing"
)

// A tree past indexAt members finds them by index, with the same results
// as by scanning: replaced in place, opened, dropped with what they held.
func TestTreeLarge(t *testing.T) {
	var obj, want strings.Builder
	obj.WriteString("{")
	want.WriteString("{")
	for i := range 100 {
		if i > 0 {
			obj.WriteString(",")
			want.WriteString(",")
		}
		k := `"k` + strconv.Itoa(i) + `"`
		obj.WriteString(k + ":" + strconv.Itoa(i))
		switch i {
		case 50:
			want.WriteString(k + `:"new"`)
		case 60:
			want.WriteString(k + `:{"a":{"b":1,"c":2}}`)
		default:
			want.WriteString(k + ":" + strconv.Itoa(i))
		}
	}
	obj.WriteString("}")
	want.WriteString(`,"tail":{"x":[1]}}`)
	var tr tree
	tr.reset()
	tr.merge(0, []byte(obj.String()))
	tr.place([]string{"k50"}, []byte(`"new"`))
	tr.place([]string{"k60", "a"}, []byte(`{"b":1}`))
	tr.place([]string{"k60", "a", "c"}, []byte(`2`))
	tr.place([]string{"tail", "x"}, []byte(`{"deep":{"y":1}}`))
	tr.place([]string{"tail", "x", "deep", "y"}, []byte(`3`))
	tr.place([]string{"tail", "x"}, []byte(`[1]`)) // drops what x held
	if tr.index == nil {
		t.Fatal("no index past indexAt nodes")
	}
	got, ok := tr.appendTo(nil, 1<<20)
	if !ok || string(got) != want.String() {
		t.Fatalf("got  %s\nwant %s", got, want.String())
	}
	if _, ok := tr.appendTo(nil, len(want.String())-1); ok {
		t.Error("a document over its limit written")
	}
	tr.reset()
	if got, _ := tr.appendTo(nil, 10); string(got) != "{}" {
		t.Errorf("reset tree: %s", got)
	}
}
