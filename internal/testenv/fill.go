package testenv

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// FillValues fills every key of the top-level `fill:` map of a service
// values file with a plausible value, as a user would before deploying:
// an image reference for image keys, a well-formed ARN for ARN keys, an
// account id, region or URL where the key says so, and "x" otherwise. It
// keeps the rest of the file (and its comments) as it is and returns how
// many keys it filled. The apiserver checks the rendered objects, not
// that these values exist in AWS.
func FillValues(data []byte) ([]byte, int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, 0, err
	}
	if len(doc.Content) == 0 {
		return data, 0, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, 0, fmt.Errorf("values file is not a map")
	}
	n := 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "fill" {
			continue
		}
		fill := root.Content[i+1]
		if fill.Kind != yaml.MappingNode {
			if fill.Tag == "!!null" {
				return data, 0, nil
			}
			return nil, 0, fmt.Errorf("fill is not a map")
		}
		for j := 0; j+1 < len(fill.Content); j += 2 {
			key, val := fill.Content[j].Value, fill.Content[j+1]
			*val = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: plausible(key), Style: yaml.DoubleQuotedStyle,
				HeadComment: val.HeadComment, LineComment: val.LineComment, FootComment: val.FootComment}
			n++
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, 0, err
	}
	return b.Bytes(), n, nil
}

// plausible is the value a fill key gets, by what its name says it is.
func plausible(key string) string {
	k := strings.ToLower(key)
	switch {
	case strings.Contains(k, "image"):
		return "registry.example/x:1.0"
	case strings.Contains(k, "arn"):
		switch {
		case strings.Contains(k, "secret"):
			return "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cutover-e2e-AbCdEf"
		case strings.Contains(k, "queue") || strings.Contains(k, "sqs"):
			return "arn:aws:sqs:eu-west-1:123456789012:cutover-e2e"
		case strings.Contains(k, "stream") || strings.Contains(k, "kinesis"):
			return "arn:aws:kinesis:eu-west-1:123456789012:stream/cutover-e2e"
		}
		return "arn:aws:iam::123456789012:role/cutover-e2e"
	case strings.Contains(k, "account"):
		return "123456789012"
	case strings.Contains(k, "region"):
		return "eu-west-1"
	case strings.Contains(k, "url"):
		return "https://sqs.eu-west-1.amazonaws.com/123456789012/cutover-e2e"
	case strings.Contains(k, "filesystem") || strings.Contains(k, "file_system") || strings.Contains(k, "efs"):
		return "fs-0123456789abcdef0"
	}
	return "x"
}
