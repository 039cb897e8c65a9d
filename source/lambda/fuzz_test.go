package lambda

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/source"
)

// seeds returns the testdata inputs whose names match one of the globs.
func seeds(f *testing.F, globs ...string) [][]byte {
	var out [][]byte
	for _, g := range globs {
		names, err := filepath.Glob(filepath.Join("testdata", "*", g))
		if err != nil {
			f.Fatal(err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		f.Fatalf("no seeds for %v", globs)
	}
	return out
}

// importNeverPanics runs Import and checks the contract: an error is an
// *source.InputError, and every service it returns is valid.
func importNeverPanics(t *testing.T, files ...source.File) {
	for _, f := range files {
		Importer{}.Detect(f)
	}
	svcs, err := Importer{}.Import(context.Background(), files, source.Options{Env: map[string]string{"STAGE": "prod"}})
	if err != nil {
		var ie *source.InputError
		if !errors.As(err, &ie) {
			t.Fatalf("error is not an *source.InputError: %v", err)
		}
		return
	}
	for _, s := range svcs {
		if err := s.Validate(); err != nil {
			t.Fatalf("Import returned an invalid service: %v", err)
		}
	}
}

// FuzzImportJSON fuzzes AWS CLI output: a function (get-function and
// friends) with a second document beside it (mappings, a URL config).
func FuzzImportJSON(f *testing.F) {
	all := seeds(f, "*.json")
	var fns, others [][]byte
	for _, b := range all {
		if strings.Contains(string(b), `"EventSourceMappings"`) || strings.Contains(string(b), `"EventSourceArn"`) || strings.Contains(string(b), `"FunctionUrl"`) {
			others = append(others, b)
		} else if !strings.HasPrefix(strings.TrimSpace(string(b)), "[") {
			fns = append(fns, b)
		}
	}
	for i, fn := range fns {
		f.Add(fn, others[i%len(others)])
	}
	f.Add([]byte(`{"FunctionName":"x","Runtime":"go1.x","Environment":{"Variables":{"A":null}}}`), []byte(`{"Functions":[{"FunctionName":"y","PackageType":"Image"}]}`))
	// A mangled ARN beside create-event-source-mapping input naming the
	// function by a partial ARN.
	f.Add([]byte(`{"Configuration":{"FunctionName":"x","FunctionArn":"arn:aws:lambda:eu-west-1000:function:x","Role":"arn:aws:iam:1:role/r","Runtime":"python3.12","Handler":"a.b"}}`), []byte(`{"FunctionName":"123456789012:function:x","EventSourceArn":"arn:aws:sqs:eu-west-1:XXXX:q"}`))
	f.Fuzz(func(t *testing.T, fn, other []byte) {
		importNeverPanics(t, source.File{Path: "fn.json", Data: fn}, source.File{Path: "other.json", Data: other})
	})
}

// FuzzImportSAM fuzzes SAM templates.
func FuzzImportSAM(f *testing.F) {
	for _, b := range seeds(f, "template.yaml") {
		f.Add(b)
	}
	f.Add([]byte("Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: !Sub [\"${A}\", {A: !Ref P}]\n      Runtime: !Join [\"\", [python, \"3.12\"]]\n"))
	f.Fuzz(func(t *testing.T, tpl []byte) {
		importNeverPanics(t, source.File{Path: "template.yaml", Data: tpl})
	})
}

// FuzzImportCFN fuzzes plain CloudFormation templates: cdk synth's JSON
// and hand-written YAML without the SAM transform.
func FuzzImportCFN(f *testing.F) {
	for _, b := range seeds(f, "*.template.json") {
		f.Add(b)
	}
	f.Add([]byte(`{"Resources":{"F":{"Type":"AWS::Lambda::Function","Properties":{"Code":{"ImageUri":{"Fn::Sub":"${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/cdk-hnb659fds-container-assets-${AWS::AccountId}-${AWS::Region}:abc"}},"PackageType":"Image","Role":{"Fn::GetAtt":["R","Arn"]}},"Metadata":{"aws:cdk:path":"S/F/Resource"}},"R":{"Type":"AWS::IAM::Role"},"M":{"Type":"AWS::Lambda::EventSourceMapping","Properties":{"FunctionName":{"Ref":"F"},"EventSourceArn":{"Fn::GetAtt":["Q","Arn"]}}},"Q":{"Type":"AWS::SQS::Queue"}}}`))
	f.Add([]byte(`{"Parameters":{"AssetParametersabcS3Bucket":{"Type":"String"}},"Resources":{"F":{"Type":"AWS::Lambda::Function","Properties":{"Runtime":"nodejs20.x","Handler":"index.handler","Code":{"S3Bucket":{"Ref":"AssetParametersabcS3Bucket"},"S3Key":{"Fn::Join":["",[{"Fn::Select":[0,{"Fn::Split":["||",{"Ref":"X"}]}]}]]}}},"Metadata":{"aws:asset:path":"asset.abc"}},"U":{"Type":"AWS::Lambda::Url","Properties":{"TargetFunctionArn":{"Fn::GetAtt":"F.Arn"},"AuthType":"AWS_IAM"}}}}`))
	f.Add([]byte("Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties: {FunctionName: f, Code: {ZipFile: x}, Runtime: python3.12, Handler: a.b, Role: arn:aws:iam::1:role/r, Tags: [{Key: a}, 1]}\n  S:\n    Type: AWS::Scheduler::Schedule\n    Properties: {ScheduleExpression: !Ref P, Target: {Arn: f, Input: {a: 1}}, State: DISABLED}\n  E:\n    Type: AWS::Events::Rule\n    Properties: {ScheduleExpression: rate(5 minutes), Targets: [{Arn: !Ref F}, {Arn: !GetAtt F.Arn}]}\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties: {FunctionName: arn:aws:lambda:eu-west-1:1:function:f, EventSourceArn: arn:aws:kinesis:eu-west-1:123456789012:stream/s}\n"))
	f.Fuzz(func(t *testing.T, tpl []byte) {
		importNeverPanics(t, source.File{Path: "stack.template.json", Data: tpl})
	})
}

// FuzzImportServerless fuzzes serverless.yml files.
func FuzzImportServerless(f *testing.F) {
	for _, b := range seeds(f, "serverless.yml") {
		f.Add(b)
	}
	f.Add([]byte("service: ${file(./x.json):name}\nprovider: {name: aws, region: eu-west-1}\ncustom:\n  s: ${file(secrets.yml)}\n  h: {Fn::GetAtt: [Db, Endpoint.Address]}\nfunctions:\n  f:\n    handler: a.b\n    environment: {A: '${self:custom.s.A}', H: '${self:custom.h}', R: {Ref: 'AWS::Region'}}\n    events:\n      - sqs: {arn: 'arn:aws:sqs:eu-west-1:XXXX:q', maximumBatchingWindowInSeconds: 5}\n"))
	f.Add([]byte("service: s\nprovider:\n  name: aws\n  stage: ${self:provider.stage}\nfunctions:\n  f:\n    handler: ${self:functions.f.handler}\n    events: ${self:custom.ev}\ncustom:\n  ev:\n    - sqs: ${env:STAGE}\n"))
	f.Fuzz(func(t *testing.T, yml []byte) {
		importNeverPanics(t, source.File{Path: "serverless.yml", Data: yml})
	})
}
