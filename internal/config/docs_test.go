package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// docsPath is the configuration reference, relative to this package.
const docsPath = "../../docs/config.md"

// TestDocsCoverEveryField keeps docs/config.md in step with the schema: every
// field of Config, at any depth, must appear in the reference as its full
// dotted YAML path in backticks, such as `routes[].retry.backoff_base`.
// Lists are written name[], maps are the field itself, pointers are followed.
// Nothing is skipped: a field that should not be documented should not exist.
func TestDocsCoverEveryField(t *testing.T) {
	checkDocs(t, docsPath, reflect.TypeOf(Config{}))
}

// TestSidecarDocsCoverEveryField does the same for the sidecar file and
// docs/sidecar.md.
func TestSidecarDocsCoverEveryField(t *testing.T) {
	checkDocs(t, "../../docs/sidecar.md", reflect.TypeOf(Sidecar{}))
}

func checkDocs(t *testing.T, docsPath string, schema reflect.Type) {
	data, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatalf("the configuration reference is missing: %v", err)
	}
	doc := string(data)

	paths := schemaPaths(t, schema, "", map[reflect.Type]bool{})
	if len(paths) == 0 {
		t.Fatalf("walked no fields of %s", schema)
	}
	var missing []string
	for _, p := range paths {
		if !strings.Contains(doc, "`"+p+"`") {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not document %d of %d fields (write each as `path` in backticks):\n\t%s",
			docsPath, len(missing), len(paths), strings.Join(missing, "\n\t"))
	}
}

// schemaPaths returns the dotted YAML path of every field under t (a struct),
// in schema order, parents before their children. It follows the same rules
// as the decoder: a field's name is its yaml tag; pointers are followed; a
// type that decodes itself (Duration, ByteSize) is a leaf.
func schemaPaths(t *testing.T, typ reflect.Type, prefix string, visiting map[reflect.Type]bool) []string {
	t.Helper()
	if visiting[typ] {
		t.Fatalf("%s: recursive type %s", prefix, typ)
	}
	visiting[typ] = true
	defer delete(visiting, typ)

	var out []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name := tagName(f)
		if name == "-" {
			continue // derived by a loader (the sidecar's cluster offer), not a field of any file
		}
		if name == "" || !f.IsExported() {
			t.Errorf("%s.%s has no YAML name: every field of the schema must be a field of the file", typ, f.Name)
			continue
		}
		p := join(prefix, name)
		out = append(out, fieldPaths(t, f.Type, p, visiting)...)
	}
	return out
}

// fieldPaths returns p (written p[] for a list) and the paths below it.
func fieldPaths(t *testing.T, typ reflect.Type, p string, visiting map[reflect.Type]bool) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if reflect.PointerTo(typ).Implements(unmarshalerType) {
		return []string{p}
	}
	switch typ.Kind() {
	case reflect.Slice, reflect.Array:
		p += "[]"
		elem := typ.Elem()
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if elem.Kind() == reflect.Struct && !reflect.PointerTo(elem).Implements(unmarshalerType) {
			return append([]string{p}, schemaPaths(t, elem, p, visiting)...)
		}
		return []string{p}
	case reflect.Struct:
		return append([]string{p}, schemaPaths(t, typ, p, visiting)...)
	default:
		// Scalars, and maps: a map is the field itself (its keys are data).
		return []string{p}
	}
}
