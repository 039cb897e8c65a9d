package report

import (
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
)

func TestMarkdownListsEveryFindingAndValue(t *testing.T) {
	s := &service.Service{Name: "api", Origin: service.Origin{Format: "ecs", Files: []string{"td.json"}}, Containers: []service.Container{{Name: "api"}}}
	s.AddValue("image", "<IMAGE1_NAME>", "the task definition had a CI placeholder")
	s.Report.Mapped("td.json", 12, "containerDefinitions[0].memory", "resources.limits.memory")
	s.Report.Drop("td.json", 30, "containerDefinitions[0].dockerLabels", "labels | pipes\nand newlines are escaped")
	s.Report.Warn("td.json", 3, "cpu", "requests.cpu", "split")
	md := Markdown([]*service.Service{s}, render.Options{})
	for _, want := range []string{
		"| [api](#api) | ecs | server | 1 | 1 | 1 | 1 | 1 |",
		"| `image` | <IMAGE1_NAME> | the task definition had a CI placeholder |",
		"| td.json:30 | `containerDefinitions[0].dockerLabels` | dropped | - | labels \\| pipes<br>and newlines are escaped |",
		"helm template api chart -f values/base.yaml -f values/env/dev.yaml -f values/services/api.yaml",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Findings are sorted by line.
	if strings.Index(md, "td.json:3 ") > strings.Index(md, "td.json:12 ") {
		t.Errorf("findings not in line order")
	}
}
