package admin

import "go.yaml.in/yaml/v3"

// encode writes a resource as YAML the way an operator writes one: the
// fields that hold something, nothing empty. What `meshctl routes get -o
// yaml` prints is what `meshctl routes apply -f` takes back.
func encode(v any) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	dropEmpty(&n)
	return yaml.Marshal(&n)
}

// dropEmpty removes the members of every mapping whose value is empty:
// null, "", an empty list or mapping (after their own empty members went),
// or a zero number or duration — zero means the default throughout the
// configuration. Booleans stay (some default to true), and so does a
// split target's weight, which is required even when 0.
func dropEmpty(n *yaml.Node) {
	for _, c := range n.Content {
		dropEmpty(c)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value != "weight" && empty(v) {
			continue
		}
		kept = append(kept, n.Content[i], n.Content[i+1])
	}
	n.Content = kept
}

func empty(v *yaml.Node) bool {
	switch v.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		return len(v.Content) == 0
	case yaml.ScalarNode:
		switch v.Tag {
		case "!!null":
			return true
		case "!!str":
			return v.Value == "" || v.Value == "0s"
		case "!!int", "!!float":
			return v.Value == "0"
		}
	}
	return false
}
