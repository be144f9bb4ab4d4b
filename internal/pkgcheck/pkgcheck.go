// Package pkgcheck holds a package to its design in its own tests: it is
// documented, and imports only what its design allows (a package of pure
// decision logic, say, the standard library alone).
package pkgcheck

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Structure checks the Go files (not the tests) of the current directory,
// the package name: one of them starts the package documentation
// ("Package name …"), and every import satisfies allowed; rule says what
// allowed allows, for the error.
func Structure(t testing.TB, name string, allowed func(importPath string) bool, rule string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	documented := false
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments|parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package "+name+" ") {
			documented = true
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed(path) {
				t.Errorf("%s imports %s: %s", file, path, rule)
			}
		}
	}
	if !documented {
		t.Error("no package documentation")
	}
}

// StandardLibrary allows the standard library alone: import paths whose
// first element has no dot.
func StandardLibrary(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
