package lambda

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/source"
)

const goodConfig = `{
  "FunctionName": "orders",
  "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders",
  "Runtime": "python3.12",
  "Handler": "app.handler"
}`

// TestInputErrors: bad input is an *source.InputError that names the file,
// the line and the field, so the user can go straight to it.
func TestInputErrors(t *testing.T) {
	cases := []struct {
		name  string
		files []source.File
		line  int
		field string
		msg   string
	}{
		{
			name:  "invalid JSON",
			files: []source.File{{Path: "fn.json", Data: []byte("{\n  \"FunctionName\": \"orders\",\n  \"Runtime\": ,\n}")}},
			line:  3, msg: "cannot parse JSON",
		},
		{
			name:  "invalid YAML",
			files: []source.File{{Path: "template.yaml", Data: []byte("Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n\tHandler: app.handler\n")}},
			line:  6, msg: "cannot parse",
		},
		{
			name:  "function with no name",
			files: []source.File{{Path: "fn.json", Data: []byte("{\n  \"FunctionName\": \"\",\n  \"Runtime\": \"python3.12\"\n}")}},
			line:  2, field: "FunctionName", msg: "no name",
		},
		{
			name:  "role that is not a role",
			files: []source.File{{Path: "fn.json", Data: []byte(strings.Replace(goodConfig, `"Handler"`, "\"Role\": \"arn:aws:iam::123456789012:user/orders\",\n  \"Handler\"", 1))}},
			line:  5, field: "Role", msg: "not an IAM role ARN",
		},
		{
			name:  "runtime that does not exist",
			files: []source.File{{Path: "fn.json", Data: []byte(strings.Replace(goodConfig, "python3.12", "python4.0", 1))}},
			line:  4, field: "Runtime", msg: "not a Lambda runtime",
		},
		{
			name: "malformed function ARN",
			// Without FunctionName the ARN is the only name; with it, a
			// mangled ARN is a warning (golden case mangled-arns).
			files: []source.File{{Path: "fn.json", Data: []byte(`{"Configuration": ` + strings.Replace(strings.Replace(goodConfig, "function:orders", "fn/orders", 1), `"FunctionName": "orders",`, "", 1) + "}")}},
			line:  3, field: "FunctionArn", msg: "not a Lambda function ARN",
		},
		{
			name:  "memory out of range",
			files: []source.File{{Path: "fn.json", Data: []byte(strings.Replace(goodConfig, `"Handler"`, "\"MemorySize\": 64,\n  \"Handler\"", 1))}},
			line:  5, field: "MemorySize", msg: "128",
		},
		{
			name:  "memory that is not a number",
			files: []source.File{{Path: "fn.json", Data: []byte(strings.Replace(goodConfig, `"Handler"`, "\"MemorySize\": \"lots\",\n  \"Handler\"", 1))}},
			line:  5, field: "MemorySize", msg: "whole number",
		},
		{
			name:  "unknown package type",
			files: []source.File{{Path: "fn.json", Data: []byte(strings.Replace(goodConfig, `"Handler"`, "\"PackageType\": \"Jar\",\n  \"Handler\"", 1))}},
			line:  5, field: "PackageType", msg: "Zip or Image",
		},
		{
			name:  "unknown architecture",
			files: []source.File{{Path: "fn.json", Data: []byte(strings.Replace(goodConfig, `"Handler"`, "\"Architectures\": [\"ppc64le\"],\n  \"Handler\"", 1))}},
			line:  5, field: "Architectures", msg: "x86_64 or arm64",
		},
		{
			name:  "EFS mount outside /mnt",
			files: []source.File{{Path: "fn.json", Data: []byte(strings.Replace(goodConfig, `"Handler"`, "\"FileSystemConfigs\": [{\"Arn\": \"arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0\",\n  \"LocalMountPath\": \"/data\"}],\n  \"Handler\"", 1))}},
			line:  6, field: "FileSystemConfigs[0].LocalMountPath", msg: "/mnt/",
		},
		{
			name: "malformed event source ARN",
			files: []source.File{
				{Path: "fn.json", Data: []byte(goodConfig)},
				{Path: "esm.json", Data: []byte("{\"EventSourceMappings\": [{\n  \"UUID\": \"u\",\n  \"EventSourceArn\": \"arn:aws:sqs:us-east-1:123456789012\",\n  \"FunctionArn\": \"arn:aws:lambda:us-east-1:123456789012:function:orders\"\n}]}")},
			},
			line: 3, field: "EventSourceMappings[0].EventSourceArn", msg: "not an ARN",
		},
		{
			name: "mapping of a function no input describes",
			files: []source.File{
				{Path: "fn.json", Data: []byte(goodConfig)},
				{Path: "esm.json", Data: []byte("{\n  \"UUID\": \"u\",\n  \"EventSourceArn\": \"arn:aws:sqs:us-east-1:123456789012:q\",\n  \"FunctionArn\": \"arn:aws:lambda:us-east-1:123456789012:function:payments\"\n}")},
			},
			line: 4, field: "FunctionArn", msg: `"payments"`,
		},
		{
			name: "Kafka mapping with two topics",
			files: []source.File{
				{Path: "fn.json", Data: []byte(goodConfig)},
				{Path: "esm.json", Data: []byte("{\n  \"UUID\": \"u\",\n  \"Topics\": [\"a\", \"b\"],\n  \"SelfManagedEventSource\": {\"Endpoints\": {\"KAFKA_BOOTSTRAP_SERVERS\": [\"k:9092\"]}},\n  \"FunctionArn\": \"arn:aws:lambda:us-east-1:123456789012:function:orders\"\n}")},
			},
			line: 3, field: "Topics", msg: "exactly one topic",
		},
		{
			name:  "function described twice",
			files: []source.File{{Path: "a.json", Data: []byte(goodConfig)}, {Path: "b.json", Data: []byte(goodConfig)}},
			line:  2, field: "FunctionName", msg: "described twice",
		},
		{
			name:  "SAM schedule with L",
			files: []source.File{{Path: "template.yaml", Data: []byte(samWith("      Events:\n        MonthEnd:\n          Type: Schedule\n          Properties:\n            Schedule: cron(0 23 L * ? *)\n"))}},
			line:  12, field: "Resources.Fn.Properties.Events.MonthEnd.Properties.Schedule", msg: "L, W or #",
		},
		{
			name:  "SAM event without a type",
			files: []source.File{{Path: "template.yaml", Data: []byte(samWith("      Events:\n        Queue:\n          Properties:\n            Queue: arn:aws:sqs:us-east-1:123456789012:q\n"))}},
			line:  9, field: "Resources.Fn.Properties.Events.Queue.Type", msg: "want a string",
		},
		{
			name:  "SAM queue ARN of another service",
			files: []source.File{{Path: "template.yaml", Data: []byte(samWith("      Events:\n        Queue:\n          Type: SQS\n          Properties:\n            Queue: arn:aws:sns:us-east-1:123456789012:topic\n"))}},
			line:  12, field: "Resources.Fn.Properties.Events.Queue.Properties.Queue", msg: "want sqs",
		},
		{
			name:  "SAM template without functions",
			files: []source.File{{Path: "template.yaml", Data: []byte("Transform: AWS::Serverless-2016-10-31\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n")}},
			line:  2, field: "Resources", msg: "no AWS::Serverless::Function",
		},
		{
			name:  "serverless schedule in weeks",
			files: []source.File{{Path: "serverless.yml", Data: []byte(slsWith("    events:\n      - schedule: rate(2 weeks)\n"))}},
			line:  9, field: "functions.job.events[0].schedule", msg: "unit",
		},
		{
			name:  "serverless http event without a path",
			files: []source.File{{Path: "serverless.yml", Data: []byte(slsWith("    events:\n      - http: GET\n"))}},
			line:  9, field: "functions.job.events[0].http", msg: "METHOD path",
		},
		{
			name:  "serverless function without handler",
			files: []source.File{{Path: "serverless.yml", Data: []byte("service: s\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n  job:\n    memorySize: 256\n")}},
			line:  6, field: "functions.job", msg: "neither handler nor image",
		},
		{
			name:  "serverless provider not aws",
			files: []source.File{{Path: "serverless.yml", Data: []byte("service: s\nprovider:\n  name: google\nfunctions:\n  job:\n    handler: a.b\n")}},
			line:  3, field: "provider.name", msg: "not aws",
		},
		{
			// Regression: the position index followed this alias forever.
			name:  "recursive YAML alias",
			files: []source.File{{Path: "serverless.yml", Data: []byte("a: &x [*x]\nservice: s\nprovider: {name: aws}\nfunctions: {f: {handler: a.b}}\n")}},
			line:  1, msg: "refers to its own anchor",
		},
		{
			name:  "YAML alias bomb",
			files: []source.File{{Path: "serverless.yml", Data: []byte(aliasBomb())}},
			msg:   "expand to more than",
			line:  -1,
		},
		{
			// CDK's synthesized templates convert; their errors name
			// the property.
			name:  "plain CloudFormation function",
			files: []source.File{{Path: "stack.template.json", Data: []byte("{\n \"Resources\": {\n  \"Fn\": {\n   \"Type\": \"AWS::Lambda::Function\",\n   \"Properties\": {\"Handler\": \"a.b\",\n    \"PackageType\": \"Tarball\"}}}}\n")}},
			line:  6, field: "Resources.Fn.Properties.PackageType", msg: "not Zip or Image",
		},
		{
			name:  "plain CloudFormation schedule",
			files: []source.File{{Path: "template.yaml", Data: []byte("Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties: {Handler: a.b, Runtime: python3.12, Code: {ZipFile: x}}\n  Tick:\n    Type: AWS::Events::Rule\n    Properties:\n      ScheduleExpression: every day\n      Targets: [{Id: t, Arn: !GetAtt Fn.Arn}]\n")}},
			line:  8, field: "Resources.Tick.Properties.ScheduleExpression",
		},
		{
			name:  "functions from a file",
			files: []source.File{{Path: "serverless.yml", Data: []byte("service: s\nprovider: {name: aws}\nfunctions: ${file(./functions.yml)}\n")}},
			line:  3, field: "functions", msg: "serverless print",
		},
		{
			name:  "not a Lambda input",
			files: []source.File{{Path: "compose.yaml", Data: []byte("services:\n  web:\n    image: nginx\n")}},
			msg:   "not a Lambda input",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Importer{}.Import(context.Background(), c.files, source.Options{})
			var ie *source.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *source.InputError, got %v", err)
			}
			if ie.File == "" {
				t.Errorf("error names no file: %v", err)
			}
			if c.line >= 0 && ie.Line != c.line {
				t.Errorf("line = %d, want %d: %v", ie.Line, c.line, err)
			}
			if c.field != "" && !strings.HasSuffix(ie.Field, c.field) {
				t.Errorf("field = %q, want %q: %v", ie.Field, c.field, err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
		})
	}
}

func samWith(props string) string {
	return "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Handler: app.handler\n" + props
}

func slsWith(fn string) string {
	return "service: s\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n  job:\n    handler: a.b\n" + fn
}

// aliasBomb is a small YAML file whose aliases expand to 10^7 nodes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 7; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("service: s\nprovider: {name: aws}\nfunctions: {f: {handler: a.b}}\n")
	return b.String()
}
