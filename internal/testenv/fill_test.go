package testenv

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestFillValues(t *testing.T) {
	in := `image:
  repository: ""
fill:
  # FILL: the task definition had a CI placeholder
  app_image: "<IMAGE1_NAME>"
  role_arn: ""
  DB_HOST: ""
other: {fill: keep}
`
	out, n, err := FillValues([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("filled %d keys, want 3", n)
	}
	var got map[string]any
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	fill := got["fill"].(map[string]any)
	want := map[string]any{"app_image": "registry.example/x:1.0", "role_arn": "arn:aws:iam::123456789012:role/cutover-e2e", "DB_HOST": "x"}
	for k, v := range want {
		if fill[k] != v {
			t.Errorf("fill.%s = %v, want %v", k, fill[k], v)
		}
	}
	if got["other"].(map[string]any)["fill"] != "keep" {
		t.Error("a nested fill key was changed")
	}
	if !strings.Contains(string(out), "# FILL: the task definition had a CI placeholder") {
		t.Errorf("comment lost:\n%s", out)
	}
	if _, n, err := FillValues([]byte("fill: {}\n")); err != nil || n != 0 {
		t.Errorf("empty fill: n=%d err=%v", n, err)
	}
}
