package lambda

import (
	"testing"

	"github.com/cutoverhq/cutover/source"
)

func TestCDKName(t *testing.T) {
	for _, c := range []struct{ tpl, want string }{
		{`{"Resources":{"OrderWorker9C8D7E6F":{"Type":"AWS::Lambda::Function","Metadata":{"aws:cdk:path":"OrdersStack/OrderWorker/Resource"}}}}`, "order-worker"},
		{`{"Resources":{"NestedHandlerAB12CD34":{"Type":"AWS::Lambda::Function","Metadata":{"aws:cdk:path":"Stack/Orders/Handler/Resource"}}}}`, "handler"},
		// No construct path: the logical id.
		{`{"Resources":{"MyFunction1A2B3C4D":{"Type":"AWS::Lambda::Function"}}}`, "my-function"},
		// Not a CDK hash: kept.
		{`{"Resources":{"WorkerV2":{"Type":"AWS::Lambda::Function"}}}`, "worker-v2"},
		// A path that is only the stack: the logical id.
		{`{"Resources":{"Fn":{"Type":"AWS::Lambda::Function","Metadata":{"aws:cdk:path":"Stack"}}}}`, "fn"},
	} {
		root, pos, err := parseDoc(source.File{Path: "t.json", Data: []byte(c.tpl)})
		if err != nil {
			t.Fatal(err)
		}
		p := &part{file: source.File{Path: "t.json"}, root: root, pos: pos}
		res := p.docVal().get("Resources")
		id := res.keys()[0]
		if got := cdkName(res.get(id), id); got != c.want {
			t.Errorf("cdkName(%s) = %q, want %q", id, got, c.want)
		}
	}
}

// TestDetectPlainTemplates: convert without --from picks cdk synth's JSON
// and hand-written YAML templates without the SAM transform, and leaves
// templates without functions to other importers.
func TestDetectPlainTemplates(t *testing.T) {
	for _, c := range []struct {
		name, data string
		want       bool
	}{
		{"cdk synth JSON", `{"Resources":{"F1A2B3C4":{"Type":"AWS::Lambda::Function","Properties":{"Code":{"ZipFile":"x"}}}}}`, true},
		{"hand-written YAML", "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  F:\n    Type: AWS::Lambda::Function\n", true},
		{"queues only", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n", false},
		{"ECS only", `{"Resources":{"T":{"Type":"AWS::ECS::TaskDefinition"}}}`, false},
		// An ECS stack whose only functions are CDK's and a custom
		// resource's handlers is the ECS importer's alone.
		{"CDK's own functions", `{"Resources":{"T":{"Type":"AWS::ECS::TaskDefinition"},"LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8aFD4BFC8A":{"Type":"AWS::Lambda::Function"}}}`, false},
		{"a custom resource's handler", "Resources:\n  H:\n    Type: AWS::Lambda::Function\n  Seed:\n    Type: Custom::Seed\n    Properties:\n      ServiceToken: !GetAtt H.Arn\n", false},
		{"a handler beside an application function", "Resources:\n  H:\n    Type: AWS::Lambda::Function\n  App:\n    Type: AWS::Lambda::Function\n  Seed:\n    Type: Custom::Seed\n    Properties:\n      ServiceToken: !GetAtt H.Arn\n", true},
	} {
		if got := (Importer{}).Detect(source.File{Path: "t", Data: []byte(c.data)}); got != c.want {
			t.Errorf("%s: Detect = %v, want %v", c.name, got, c.want)
		}
	}
}
