package ecs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// caseFiles reads the input files of a testdata case: every *.json but the
// golden service.json, in name order, named by their base name so that
// reports do not depend on where the test runs.
func caseFiles(t testing.TB, dir string) []source.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	yamls, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	paths = append(paths, yamls...)
	sort.Strings(paths)
	var files []source.File
	for _, p := range paths {
		if filepath.Base(p) == "service.json" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, source.File{Path: filepath.Base(p), Data: data})
	}
	if len(files) == 0 {
		t.Fatalf("%s: no input files", dir)
	}
	return files
}

// TestGolden converts each testdata case and compares the services (as
// JSON, without their report) and the report with the golden files.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || filepath.Base(dir) == "fuzz" {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			files := caseFiles(t, dir)
			for _, f := range files {
				if !(Importer{}).Detect(f) {
					t.Errorf("Detect(%s) = false", f.Path)
				}
			}
			svcs, err := Importer{}.Import(context.Background(), files, source.Options{})
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			var report strings.Builder
			var models []service.Service
			for _, s := range svcs {
				if err := s.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
				report.WriteString("# " + s.Name + "\n")
				for _, f := range s.Report.Sorted() {
					report.WriteString(f.String() + "\n")
				}
				assertEveryLeafReported(t, files, s)
				assertFindingsNameInputFields(t, files, s)
				c := *s
				c.Report = service.Report{}
				models = append(models, c)
			}
			golden.AssertJSON(t, filepath.Join(dir, "service.json"), models)
			golden.Assert(t, filepath.Join(dir, "report.txt"), []byte(report.String()))
		})
	}
	if n < 8 {
		t.Errorf("only %d golden cases", n)
	}
}

// assertEveryLeafReported checks the promise of the report: every field of
// the service's input files that has a value is covered by a finding on it
// or on one of its ancestors. Auxiliary files (target groups, scaling) may
// hold entries for other services, which are not this service's findings.
func assertEveryLeafReported(t *testing.T, files []source.File, s *service.Service) {
	t.Helper()
	covered := map[string]map[string]bool{}
	for _, f := range s.Report.Findings {
		if covered[f.File] == nil {
			covered[f.File] = map[string]bool{}
		}
		covered[f.File][f.Field] = true
	}
	for _, f := range files {
		if !contains(s.Origin.Files, f.Path) {
			continue
		}
		leaves := leafPaths(t, f)
		for _, leaf := range leaves {
			if isOtherEntry(leaf, covered[f.Path]) || otherResource(leaf, covered[f.Path]) || identifiers[leaf[strings.LastIndex(leaf, ".")+1:]] {
				continue
			}
			ok := false
			for p := leaf; p != "" && !ok; p = source.ParentPath(p) {
				ok = covered[f.Path][p]
			}
			if !ok {
				t.Errorf("%s: %s is in no finding", f.Path, leaf)
			}
		}
	}
}

// identifiers are the fields that only name what the report already
// names (the service, the revision, the policy); the Tracker marks them
// used without a finding of their own.
var identifiers = map[string]bool{
	"taskDefinitionArn": true, "revision": true, "family": true,
	"serviceArn": true, "clusterArn": true, "cluster": true,
	"PolicyARN": true, "PolicyName": true, "PolicyType": true,
	"ServiceNamespace": true, "ScalableDimension": true,
}

// assertFindingsNameInputFields checks the other side of the report's
// promise: a finding describes a field the input holds (the field, or an
// object or list above values), unless it says plainly that the field was
// not set and which default applies.
func assertFindingsNameInputFields(t *testing.T, files []source.File, s *service.Service) {
	t.Helper()
	held := map[string]map[string]bool{}
	for _, f := range files {
		held[f.Path] = map[string]bool{}
		for _, leaf := range leafPaths(t, f) {
			for p := leaf; p != ""; p = source.ParentPath(p) {
				held[f.Path][p] = true
			}
		}
	}
	for _, f := range s.Report.Findings {
		if held[f.File] == nil || f.Field == "" || held[f.File][f.Field] || strings.HasPrefix(f.Message, "not set") {
			continue
		}
		t.Errorf("a finding on a field the input does not hold, without saying it was not set: %s", f)
	}
}

// isOtherEntry reports whether leaf belongs to a list entry of an
// auxiliary file that the service's findings never mention.
func isOtherEntry(leaf string, covered map[string]bool) bool {
	for _, list := range []string{"TargetGroups[", "ScalingPolicies[", "ScalableTargets[", "services["} {
		if !strings.HasPrefix(leaf, list) {
			continue
		}
		end := strings.Index(leaf, "]")
		entry := leaf[:end+1]
		for f := range covered {
			if f == entry || strings.HasPrefix(f, entry+".") || strings.HasPrefix(f, entry+"[") {
				return false
			}
		}
		return true
	}
	return false
}

// leafPaths lists the paths of the non-null, non-empty scalars of a file,
// through a walk of its own rather than source.Positions, so the check
// does not trust the code under test.
func leafPaths(t *testing.T, f source.File) []string {
	t.Helper()
	var v any
	data := f.Data
	if cfnLeaves(&data) {
		// a CloudFormation template, as addTemplate reads it
	} else if q := quoteTemplates(data); q != nil {
		data = q // an unrendered template, as the importer reads it
	} else if y := yamlAsJSON(data); y != nil {
		data = y // YAML, as the importer reads it
	}
	if r := respellKeys(data); r != nil && !bytes.Contains(f.Data, []byte(cfnTaskDef)) {
		data = r // keys in ECS's spelling, as the importer reads them
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(source.JoinPath(path, k), e)
			}
		case []any:
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		case nil:
		case string:
			if x != "" {
				out = append(out, path)
			}
		default:
			out = append(out, path)
		}
	}
	walk("", v)
	sort.Strings(out)
	return out
}

func TestDetect(t *testing.T) {
	cases := []struct {
		name string
		data string
		want bool
	}{
		{"describe-task-definition", `{"taskDefinition": {"family": "x", "containerDefinitions": []}}`, true},
		{"register input", `{"family": "x", "containerDefinitions": [{"name": "a"}]}`, true},
		{"describe-services", `{"services": [{"serviceName": "x", "taskDefinition": "x:1"}], "failures": []}`, true},
		{"create-service input", `{"cluster": "prod", "serviceName": "x", "taskDefinition": "x:3", "desiredCount": 2}`, true},
		{"target groups", `{"TargetGroups": [{"TargetGroupArn": "arn", "TargetType": "ip"}]}`, true},
		{"lambda target groups", `{"TargetGroups": [{"TargetGroupArn": "arn", "TargetType": "lambda"}]}`, false},
		{"ecs scaling policies", `{"ScalingPolicies": [{"ServiceNamespace": "ecs"}]}`, true},
		{"lambda scaling policies", `{"ScalingPolicies": [{"ServiceNamespace": "lambda"}]}`, false},
		{"ecs scalable targets", `{"ScalableTargets": [{"ServiceNamespace": "ecs"}]}`, true},
		{"compose as JSON", `{"services": {"web": {"image": "nginx"}}}`, false},
		{"lambda get-function", `{"Configuration": {"FunctionName": "f"}}`, false},
		{"yaml", "services:\n  web:\n    image: nginx\n", false},
		{"yaml task definition", "family: web\ncontainerDefinitions:\n  - name: app\n    image: nginx:1.27\n", true},
		{"yaml create-service input", "serviceName: web\ntaskDefinition: web:3\ndesiredCount: 2\n", true},
		{"broken json", `{"taskDefinition": {`, false},
		{"empty", ``, false},
		{"array", `[{"taskDefinition": {}}]`, false},
		{"container definitions list", `[{"name": "app", "image": "nginx:1.27", "essential": true}]`, true},
		{"list of names only", `[{"name": "a"}, {"name": "b"}]`, false},
		{"create-service output", `{"service": {"serviceName": "x", "taskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/x:3"}}`, true},
		{"other service wrapper", `{"service": {"name": "x"}}`, false},
		{"terraform template", "[{\"name\": \"app\", \"image\": \"${image}\", \"cpu\": ${cpu}}]", true},
		{"go template", `{"family": "x", "containerDefinitions": [{"name": "a", "memory": {{ .Memory }}}]}`, true},
		{"with BOM", "\xef\xbb\xbf{\"taskDefinition\": {\"family\": \"x\"}}", true},
		{"cloudformation yaml", "Resources:\n  TD:\n    Type: AWS::ECS::TaskDefinition\n    Properties:\n      Family: !Ref Name\n", true},
		{"cdk synth json", `{"Resources": {"TD": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{"Name": "a", "Image": {"Fn::Sub": "x"}}]}}}}`, true},
		{"cloudformation with a function and a task definition", "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n  TD:\n    Type: AWS::ECS::TaskDefinition\n", true},
		// convert gives a SAM template to the lambda importer too.
		{"sam template with a task definition", "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n  TD:\n    Type: AWS::ECS::TaskDefinition\n", true},
		{"cloudformation without ecs", "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := (Importer{}).Detect(source.File{Path: "f.json", Data: []byte(c.data)}); got != c.want {
				t.Errorf("Detect = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	imp, err := source.Lookup("ecs")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := imp.(Importer); !ok {
		t.Errorf("ecs is registered as %T", imp)
	}
}

// TestErrors feeds one bad input per row and checks that the error is an
// *source.InputError naming the file, the line and the field.
func TestErrors(t *testing.T) {
	const td = `{
  "family": "web",
  "containerDefinitions": [
    {
      "name": "app",
      "image": "nginx:1.27",
      "cpu": 256,
      "memory": 512
    }
  ]
}`
	svc := func(extra string) string {
		return `{
  "serviceName": "web",
  "cluster": "prod",
  "taskDefinition": "web:1",
  "desiredCount": 2` + extra + `
}`
	}
	cases := []struct {
		name  string
		files map[string]string
		file  string
		line  int
		field string
		msg   string
	}{
		{
			name:  "invalid JSON",
			files: map[string]string{"td.json": "{\n  \"family\": \"web\",\n  \"containerDefinitions\": [\n    {\"name\": \"app\",}\n  ]\n}"},
			file:  "td.json", line: 4, msg: "invalid JSON",
		},
		{
			name:  "broken YAML",
			files: map[string]string{"td.yaml": "family: web\ncontainerDefinitions:\n  - name: app\n   image: nginx\n"},
			file:  "td.yaml", line: 2, msg: "cannot parse",
		},
		{
			name:  "YAML with a wrong type",
			files: map[string]string{"td.yaml": "family: web\ncontainerDefinitions:\n  - name: app\n    image: nginx:1.27\n    essential: [yes]\n"},
			file:  "td.yaml", line: 5, field: "containerDefinitions[0].essential", msg: "want true or false",
		},
		{
			name:  "jq template",
			files: map[string]string{"td.json": "{\n  \"family\": \"web\",\n  \"taskRoleArn\": env.TASK_ROLE,\n  \"containerDefinitions\": []\n}"},
			file:  "td.json", line: 3, field: "taskRoleArn", msg: "render the template first",
		},
		{
			name:  "no containers",
			files: map[string]string{"td.json": "{\n  \"family\": \"web\",\n  \"containerDefinitions\": []\n}"},
			file:  "td.json", line: 3, field: "containerDefinitions", msg: "no containers",
		},
		{
			name:  "null containers in describe output",
			files: map[string]string{"td.json": "{\n  \"taskDefinition\": {\n    \"family\": \"web\",\n    \"containerDefinitions\": null\n  }\n}"},
			file:  "td.json", line: 4, field: "taskDefinition.containerDefinitions", msg: "no containers",
		},
		{
			name:  "unknown launch type",
			files: map[string]string{"td.json": td, "svc.json": svc(",\n  \"launchType\": \"LAMBDA\"")},
			file:  "svc.json", line: 6, field: "launchType", msg: `unknown launch type "LAMBDA"`,
		},
		{
			name:  "unknown compatibility",
			files: map[string]string{"td.json": strings.Replace(td, `"family": "web",`, "\"family\": \"web\",\n  \"requiresCompatibilities\": [\"FARGATE\", \"K8S\"],", 1)},
			file:  "td.json", line: 3, field: "requiresCompatibilities[1]", msg: `unknown compatibility "K8S"`,
		},
		{
			name: "malformed secrets manager ARN",
			files: map[string]string{"td.json": strings.Replace(td, `"memory": 512`,
				"\"memory\": 512,\n      \"secrets\": [\n        {\"name\": \"DB\", \"valueFrom\": \"arn:aws:secretsmanager:eu-west-1:481926735012:db-password\"}\n      ]", 1)},
			file: "td.json", line: 10, field: "containerDefinitions[0].secrets[0].valueFrom", msg: "malformed Secrets Manager ARN",
		},
		{
			name: "secret ARN of another service",
			files: map[string]string{"td.json": strings.Replace(td, `"memory": 512`,
				"\"memory\": 512,\n      \"secrets\": [\n        {\"name\": \"DB\", \"valueFrom\": \"arn:aws:kms:eu-west-1:481926735012:key/1234\"}\n      ]", 1)},
			file: "td.json", line: 10, field: "containerDefinitions[0].secrets[0].valueFrom", msg: "kms resource",
		},
		{
			name:  "malformed task role ARN",
			files: map[string]string{"td.json": strings.Replace(td, `"family": "web",`, "\"family\": \"web\",\n  \"taskRoleArn\": \"arn:aws:iam::48192673501:role/web\",", 1)},
			file:  "td.json", line: 3, field: "taskRoleArn", msg: "not 12 digits",
		},
		{
			name:  "cpu is not a number",
			files: map[string]string{"td.json": strings.Replace(td, `"cpu": 256`, `"cpu": "quarter"`, 1)},
			file:  "td.json", line: 7, field: "containerDefinitions[0].cpu", msg: "CPU units",
		},
		{
			name:  "task cpu is not a number",
			files: map[string]string{"td.json": strings.Replace(td, `"family": "web",`, "\"family\": \"web\",\n  \"cpu\": \"lots\",", 1)},
			file:  "td.json", line: 3, field: "cpu", msg: `"lots"`,
		},
		{
			name: "two containers with one name",
			files: map[string]string{"td.json": strings.Replace(td, "    }\n  ]",
				"    },\n    {\n      \"name\": \"app\",\n      \"image\": \"busybox\"\n    }\n  ]", 1)},
			file: "td.json", line: 11, field: "containerDefinitions[1].name", msg: `two containers named "app"`,
		},
		{
			name: "names that collide once sanitized",
			files: map[string]string{"td.json": strings.Replace(td, "    }\n  ]",
				"    },\n    {\n      \"name\": \"App\",\n      \"image\": \"busybox\"\n    }\n  ]", 1)},
			file: "td.json", line: 11, field: "containerDefinitions[1].name", msg: `would both be named "app"`,
		},
		{
			name:  "wrong JSON type",
			files: map[string]string{"td.json": strings.Replace(td, `"cpu": 256,`, "\"cpu\": 256,\n      \"essential\": \"yes\",", 1)},
			file:  "td.json", line: 8, field: "containerDefinitions.essential", msg: "want true or false",
		},
		{
			name:  "service without its task definition",
			files: map[string]string{"svc.json": svc("")},
			file:  "svc.json", line: 4, field: "taskDefinition", msg: "describe-task-definition --task-definition web:1",
		},
		{
			name:  "load balancer port the container does not map",
			files: map[string]string{"td.json": td, "svc.json": svc(",\n  \"loadBalancers\": [\n    {\"targetGroupArn\": \"arn:aws:elasticloadbalancing:eu-west-1:481926735012:targetgroup/web/0123456789abcdef\", \"containerName\": \"app\", \"containerPort\": 8080}\n  ]")},
			file:  "svc.json", line: 7, field: "loadBalancers[0].containerPort", msg: "no port mapping for port 8080",
		},
		{
			name:  "dependsOn an unknown container",
			files: map[string]string{"td.json": strings.Replace(td, `"memory": 512`, "\"memory\": 512,\n      \"dependsOn\": [{\"containerName\": \"migrate\", \"condition\": \"SUCCESS\"}]", 1)},
			file:  "td.json", line: 9, field: "containerDefinitions[0].dependsOn[0].containerName", msg: `no container named "migrate"`,
		},
		{
			name:  "scaling file for another service",
			files: map[string]string{"td.json": td, "svc.json": svc(""), "policies.json": "{\n  \"ScalingPolicies\": [\n    {\n      \"ServiceNamespace\": \"ecs\",\n      \"ResourceId\": \"service/staging/web\",\n      \"PolicyType\": \"TargetTrackingScaling\"\n    }\n  ]\n}"},
			file:  "policies.json", line: 5, field: "ScalingPolicies[0].ResourceId", msg: "services converted: web",
		},
		{
			name:  "not an ECS file",
			files: map[string]string{"fn.json": `{"Configuration": {"FunctionName": "f"}}`},
			file:  "fn.json", line: 1, msg: "not an ECS task definition",
		},
		{
			name:  "S3 environment file that is not an S3 ARN",
			files: map[string]string{"td.json": strings.Replace(td, `"memory": 512`, "\"memory\": 512,\n      \"environmentFiles\": [{\"value\": \"s3://bucket/app.env\", \"type\": \"s3\"}]", 1)},
			file:  "td.json", line: 9, field: "containerDefinitions[0].environmentFiles[0].value", msg: "malformed S3 object ARN",
		},
		{
			name:  "template: a container's Memory that is no number",
			files: map[string]string{"stack.yaml": "Resources:\n  TD:\n    Type: AWS::ECS::TaskDefinition\n    Properties:\n      ContainerDefinitions:\n        - Name: app\n          Image: nginx\n          Memory: [512]\n"},
			file:  "stack.yaml", line: 8, field: "Resources.TD.Properties.containerDefinitions[0].memory", msg: "want",
		},
		{
			name:  "template: a resource without properties",
			files: map[string]string{"stack.json": "{\n  \"Resources\": {\n    \"TD\": {\n      \"Type\": \"AWS::ECS::TaskDefinition\"\n    }\n  }\n}"},
			file:  "stack.json", line: 3, field: "Resources.TD.Properties", msg: "no Properties",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var files []source.File
			names := make([]string, 0, len(c.files))
			for n := range c.files {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				files = append(files, source.File{Path: n, Data: []byte(c.files[n])})
			}
			_, err := Importer{}.Import(context.Background(), files, source.Options{})
			var ie *source.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *source.InputError, got %T %v", err, err)
			}
			if ie.File != c.file || ie.Line != c.line || ie.Field != c.field {
				t.Errorf("error names %s:%d field %q, want %s:%d field %q (%v)", ie.File, ie.Line, ie.Field, c.file, c.line, c.field, err)
			}
			text := err.Error()
			for _, want := range []string{c.file, c.field, c.msg} {
				if !strings.Contains(text, want) {
					t.Errorf("error %q does not say %q", text, want)
				}
			}
		})
	}
}

// cfnLeaves replaces *data with the JSON of a CloudFormation template
// whose ECS resources' keys are respelt, as addTemplate reads it.
func cfnLeaves(data *[]byte) bool {
	if !bytes.Contains(*data, []byte(cfnTaskDef)) {
		return false
	}
	var root yaml.Node
	if yaml.Unmarshal(respellYAMLKeys(*data), &root) != nil || len(root.Content) != 1 {
		return false
	}
	v, ok := yamlValue(root.Content[0], 0)
	if !ok {
		return false
	}
	// An intrinsic is one value, as the importer reads it.
	*data, _ = json.Marshal((&cfnResolver{}).resolve(v))
	return true
}

// otherResource reports whether leaf is in a template outside the
// properties of the resources the service's findings name: parameters,
// outputs, resource attributes, other services' resources.
func otherResource(leaf string, covered map[string]bool) bool {
	template := false
	for f := range covered {
		template = template || strings.HasPrefix(f, "Resources.")
	}
	if !template {
		return false
	}
	parts := strings.SplitN(leaf, ".", 4)
	if len(parts) < 4 || parts[0] != "Resources" || !strings.EqualFold(parts[2], "Properties") {
		return true
	}
	props := strings.Join(parts[:3], ".")
	for f := range covered {
		if strings.HasPrefix(f, props+".") || f == props {
			return false
		}
	}
	return true
}
