package jq

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/itchyny/gojq"
)

// refused are the names an expression may not use, whatever their arity
// and even if the expression defines them itself: they read the process
// environment or other inputs, write to stderr, stop the run, or load
// modules.
var refused = map[string]string{
	"env":               "reads the process environment",
	"$ENV":              "reads the process environment",
	"input":             "reads other inputs",
	"inputs":            "reads other inputs",
	"input_filename":    "reads the input's file name",
	"input_line_number": "reads the input's position",
	"debug":             "writes to stderr",
	"stderr":            "writes to stderr",
	"halt":              "stops the process in jq",
	"halt_error":        "stops the process in jq",
	"modulemeta":        "loads modules",
	"get_search_list":   "reads the module search path",
	"get_prog_origin":   "reads the program's location",
	"get_jq_origin":     "reads the jq binary's location",
}

// refuse walks the parsed expression and reports the first refused name
// or any import/include.
func refuse(expr string, q *gojq.Query) error {
	if len(q.Imports) > 0 || q.Meta != nil {
		line, col := locate(expr, "import")
		if line == 0 {
			line, col = locate(expr, "include")
		}
		return &CompileError{Line: line, Column: col, Msg: "modules (import, include) are not allowed"}
	}
	var found string
	walk(reflect.ValueOf(q), func(name string) bool {
		if _, ok := refused[name]; ok {
			found = name
			return false
		}
		return true
	})
	if found == "" {
		return nil
	}
	line, col := locate(expr, found)
	return &CompileError{Line: line, Column: col,
		Msg: fmt.Sprintf("%s is not allowed in a transform (%s)", found, refused[found])}
}

var (
	funcType   = reflect.TypeFor[gojq.Func]()
	keyValType = reflect.TypeFor[gojq.ObjectKeyVal]()
	defType    = reflect.TypeFor[gojq.FuncDef]()
)

// walk visits every function or variable name referenced or defined in
// the AST (found by reflection, so that every node type gojq has, now or
// later, is covered). visit returns false to stop.
func walk(v reflect.Value, visit func(string) bool) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return true
		}
		return walk(v.Elem(), visit)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if !walk(v.Index(i), visit) {
				return false
			}
		}
	case reflect.Struct:
		switch v.Type() {
		case funcType:
			if !visit(v.FieldByName("Name").String()) {
				return false
			}
		case defType:
			if !visit(v.FieldByName("Name").String()) {
				return false
			}
		case keyValType:
			// {$ENV} is shorthand for {ENV: $ENV}.
			if k := v.FieldByName("Key").String(); strings.HasPrefix(k, "$") && !visit(k) {
				return false
			}
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && !walk(v.Field(i), visit) {
				return false
			}
		}
	}
	return true
}

// compileError gives a gojq compile error a position when it names a
// function or variable of the expression.
func compileError(expr string, err error) error {
	msg := err.Error()
	name := ""
	if s, ok := strings.CutPrefix(msg, "function not defined: "); ok {
		name = s
		if i := strings.LastIndexByte(s, '/'); i > 0 {
			name = s[:i]
		}
	} else if s, ok := strings.CutPrefix(msg, "variable not defined: "); ok {
		name = s
	}
	ce := &CompileError{Msg: msg}
	if name != "" {
		ce.Line, ce.Column = locate(expr, name)
	}
	return ce
}

// lineCol converts a byte offset of expr into a 1-based line and column
// (in characters).
func lineCol(expr string, off int) (int, int) {
	off = min(max(off, 0), len(expr))
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if expr[i] == '\n' {
			line, start = line+1, i+1
		}
	}
	return line, utf8.RuneCountInString(expr[start:off]) + 1
}

// locate finds the first use of the identifier name in expr, outside
// string literals, comments, field accesses (.name) and object keys
// (name:), and returns its line and column, or 0, 0.
func locate(expr, name string) (int, int) {
	if off := indexIdent(expr, name); off >= 0 {
		return lineCol(expr, off)
	}
	return 0, 0
}

func isIdentByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func indexIdent(expr, name string) int {
	// interp holds, for each open string interpolation \( ... ), the
	// parenthesis depth inside it.
	var interp []int
	inString := false
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if inString {
			switch c {
			case '\\':
				if i+1 < len(expr) && expr[i+1] == '(' {
					interp = append(interp, 0)
					inString = false
				}
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			continue
		case '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
			continue
		case '(':
			if n := len(interp); n > 0 {
				interp[n-1]++
			}
			continue
		case ')':
			if n := len(interp); n > 0 {
				if interp[n-1] == 0 {
					interp = interp[:n-1]
					inString = true
				} else {
					interp[n-1]--
				}
			}
			continue
		}
		if !strings.HasPrefix(expr[i:], name) {
			continue
		}
		end := i + len(name)
		if i > 0 && (isIdentByte(expr[i-1]) || expr[i-1] == '.' || expr[i-1] == '$' || expr[i-1] == ':') {
			continue
		}
		if end < len(expr) && isIdentByte(expr[end]) {
			continue
		}
		rest := strings.TrimLeft(expr[end:], " \t\r\n")
		if strings.HasPrefix(rest, ":") && !strings.HasPrefix(rest, "::") {
			continue // an object key
		}
		return i
	}
	return -1
}
