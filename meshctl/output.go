package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
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
		// protojson varies its whitespace on purpose; scripts get a stable form.
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return err
		}
		b := buf.Bytes()
		if format == "json" {
			var out bytes.Buffer
			if err := json.Indent(&out, b, "", "  "); err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, out.String())
			return err
		}
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil { // JSON is YAML
			return err
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
