package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Where meshctl reads and writes; tests replace them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
	stdin  io.Reader = os.Stdin
)

// render prints msg as JSON or YAML (its protobuf JSON form), or as the
// table that rows writes.
func render(format string, msg proto.Message, header string, rows func(w io.Writer)) error {
	switch format {
	case "json", "yaml":
		raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(msg)
		if err != nil {
			return err
		}
		// protojson varies its whitespace on purpose, and writes 64-bit
		// integers as strings (proto3's JSON mapping, for JavaScript's
		// sake): scripts get one stable form, with numbers as numbers.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		v = intsAsNumbers(msg.ProtoReflect().Descriptor(), v)
		if format == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		y, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = stdout.Write(y)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}

// intsAsNumbers returns v, the protobuf JSON of a message of type md
// decoded with UseNumber, with the 64-bit integer fields that protojson
// writes as strings turned into numbers (and every number into an int64,
// uint64 or float64, which YAML writes as numbers too).
func intsAsNumbers(md protoreflect.MessageDescriptor, v any) any {
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := string(fd.Name())
		val, ok := obj[name]
		if !ok {
			continue
		}
		switch {
		case fd.IsMap():
			if m, ok := val.(map[string]any); ok {
				for k, e := range m {
					m[k] = fieldValue(fd.MapValue(), e)
				}
			}
		case fd.IsList():
			if list, ok := val.([]any); ok {
				for j, e := range list {
					list[j] = fieldValue(fd, e)
				}
			}
		default:
			obj[name] = fieldValue(fd, val)
		}
	}
	return obj
}

// fieldValue is one value of field fd (an element, for lists and maps).
func fieldValue(fd protoreflect.FieldDescriptor, v any) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return intsAsNumbers(fd.Message(), v)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if s, ok := v.(string); ok {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if s, ok := v.(string); ok {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return n
			}
		}
	}
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil {
			return f
		}
	}
	return v
}
