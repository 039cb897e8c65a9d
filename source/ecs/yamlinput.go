package ecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The AWS CLI takes every input as YAML too (--cli-input-yaml, and
// --generate-cli-skeleton yaml-input), and teams keep task definitions in
// YAML beside their other manifests. Such a file is read as the JSON it
// stands for; its positions come from the YAML itself, so the report
// names its lines.

// yamlAsJSON returns the JSON a YAML document stands for, or nil when data
// is not a YAML mapping or list. CloudFormation's short forms (!Ref X,
// !Sub '…', !GetAtt …) become placeholders, as a pipeline's variables do.
func yamlAsJSON(data []byte) []byte {
	t := bytes.TrimSpace(data)
	if len(t) == 0 || t[0] == '{' || t[0] == '[' && json.Valid(t) {
		return nil
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil
	}
	n := root.Content[0]
	if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
		return nil
	}
	v, ok := yamlValue(n, 0)
	if !ok {
		return nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return out
}

// yamlValue turns a node into what encoding/json marshals to the same
// document; ok is false for what JSON cannot hold (non-scalar keys,
// aliases nested too deep).
func yamlValue(n *yaml.Node, depth int) (any, bool) {
	if depth > 100 {
		return nil, false
	}
	if n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") && strings.HasPrefix(n.Tag, "!") {
		// !Ref Name, !Sub 'arn:…:${AWS::AccountId}…', !GetAtt A.B: a value
		// the stack resolves, which cutover cannot.
		text := n.Value
		if n.Kind != yaml.ScalarNode {
			text = strings.Join(yamlWords(n, nil, 0), " ")
		}
		return fmt.Sprintf("${%s %s}", n.Tag, strings.TrimSpace(text)), true
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, false
		}
		return yamlValue(n.Alias, depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, false
			}
			if k.Value == "<<" && k.Tag == "!!merge" {
				continue // merge keys: rare in ECS input, not worth guessing
			}
			v, ok := yamlValue(n.Content[i+1], depth+1)
			if !ok {
				return nil, false
			}
			m[k.Value] = v
		}
		return m, true
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, ok := yamlValue(c, depth+1)
			if !ok {
				return nil, false
			}
			l = append(l, v)
		}
		return l, true
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			b, err := strconv.ParseBool(strings.ToLower(n.Value))
			if err != nil {
				return n.Value, true
			}
			return b, true
		case "!!int", "!!float":
			// json.Number keeps the digits as written; YAML's other
			// spellings (0x1F, .inf, 1_000) stay text and the field
			// that wants a number says so.
			if json.Valid([]byte(n.Value)) {
				if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
					return json.Number(n.Value), true
				}
			}
			return n.Value, true
		}
		return n.Value, true
	}
	return nil, false
}

// yamlWords returns the scalars under a tagged node, nested short forms
// with their tags (!Join ["/", [service, !GetAtt Service.Name]] gives
// "/ service !GetAtt Service.Name"), so the placeholder names every
// resource the value comes from.
func yamlWords(n *yaml.Node, out []string, depth int) []string {
	if depth > 20 {
		return out
	}
	for _, c := range n.Content {
		if c.Tag != "" && !strings.HasPrefix(c.Tag, "!!") {
			out = append(out, c.Tag)
		}
		if c.Kind == yaml.ScalarNode {
			out = append(out, c.Value)
		} else {
			out = yamlWords(c, out, depth+1)
		}
	}
	return out
}
