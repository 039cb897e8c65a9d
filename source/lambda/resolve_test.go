package lambda

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

func docOf(t *testing.T, src string) val {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	pos, err := source.ParsePositions("x.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var r service.Report
	return val{n: &root, t: source.NewTracker("x.yml", pos, &r)}
}

func TestServerlessVariables(t *testing.T) {
	doc := docOf(t, `
service: wallet
custom:
  table: transfers-${sls:stage}
  loop: ${self:custom.loop}
  count: 5
provider:
  stage: ${opt:stage, 'qa'}
  region: eu-west-2
stages:
  default:
    params:
      domain: example.com
  qa:
    params:
      domain: qa.example.com
probe:
  self: ${self:custom.table}
  nested: ${self:custom.${self:provider.region}, 'fallback'}
  opt: ${opt:stage}
  optDefault: ${opt:stage, "dev"}
  env: ${env:HOME_REGION}
  envDefault: ${env:MISSING, 'x'}
  envChain: ${env:MISSING, self:custom.count}
  ssm: ${ssm:/wallet/${sls:stage}/token}
  ssmRegion: ${ssm(us-east-1):/wallet/token~true}
  ssmInside: prefix-${ssm:/wallet/token}
  param: ${param:domain}
  region: ${aws:region}
  account: ${aws:accountId}
  file: ${file(./env.yml):key}
  cf: ${cf:other-stack.QueueUrl}
  loop: ${self:custom.loop}
  two: ${self:service}-${sls:stage}
  plain: no variables here
  unclosed: ${self:service
  placeholder: <IMAGE1_NAME>
  number: ${self:custom.count}
`)
	r := &sls{doc: doc, env: map[string]string{"HOME_REGION": "eu-central-1"}, stage: "qa", region: "eu-west-2",
		cfn: &cfn{resources: map[string]string{}, used: map[string]bool{}}}
	cases := []struct {
		key, want string
		ok        bool
		secret    string
		note      bool
	}{
		{key: "self", want: "transfers-qa", ok: true},
		{key: "nested", want: "fallback", ok: true, note: true},
		{key: "opt", ok: false},
		{key: "optDefault", want: "dev", ok: true, note: true},
		{key: "env", want: "eu-central-1", ok: true, note: true},
		{key: "envDefault", want: "x", ok: true, note: true},
		{key: "envChain", want: "5", ok: true, note: true},
		{key: "ssm", secret: "/wallet/qa/token"},
		{key: "ssmRegion", secret: "/wallet/token"},
		{key: "ssmInside", ok: false},
		{key: "param", want: "qa.example.com", ok: true},
		{key: "region", want: "eu-west-2", ok: true, note: true},
		{key: "account", ok: false},
		{key: "file", ok: false},
		{key: "cf", ok: false},
		{key: "loop", ok: false},
		{key: "two", want: "wallet-qa", ok: true},
		{key: "plain", want: "no variables here", ok: true},
		{key: "unclosed", ok: false},
		{key: "placeholder", ok: false},
		{key: "number", want: "5", ok: true},
	}
	for _, c := range cases {
		got := r.resolve(doc.get("probe").get(c.key))
		if c.secret != "" {
			if got.secret == nil || got.secret.Key != c.secret || got.secret.Source != service.ParameterStore {
				t.Errorf("%s: secret = %+v, want ParameterStore %s", c.key, got.secret, c.secret)
			}
			continue
		}
		if got.ok != c.ok || got.ok && got.text != c.want {
			t.Errorf("%s: got %+v, want ok=%v %q", c.key, got, c.ok, c.want)
		}
		if got.ok && (got.note != "") != c.note {
			t.Errorf("%s: note %q, want a note: %v", c.key, got.note, c.note)
		}
		if !got.ok && got.reason == "" {
			t.Errorf("%s: unresolved without a reason", c.key)
		}
	}
}

func TestCloudFormationIntrinsics(t *testing.T) {
	doc := docOf(t, `
Parameters:
  Stage: {Type: String, Default: prod}
  Secret: {Type: String, NoEcho: true}
Resources:
  Queue: {Type: AWS::SQS::Queue}
probe:
  ref: !Ref Stage
  refLong: {Ref: Stage}
  refNoDefault: !Ref Secret
  refResource: !Ref Queue
  region: !Ref AWS::Region
  partition: !Ref AWS::Partition
  sub: !Sub 'orders-${Stage}'
  subLiteral: !Sub 'cost-${!Literal}'
  subList: !Sub ['${Prefix}-${Stage}', {Prefix: !Ref Stage}]
  subAttr: !Sub '${Queue.Arn}'
  subLong: {"Fn::Sub": "arn:${AWS::Partition}:sqs:eu-west-1:123456789012:q-${Stage}"}
  join: !Join ['-', [a, !Ref Stage, c]]
  getAtt: !GetAtt Queue.Arn
  getAttList: {"Fn::GetAtt": [Queue, Arn]}
  import: !ImportValue shared-queue
  if: !If [IsProd, a, b]
  dynamic: '{{resolve:secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf:SecretString:password::v2}}'
  ssmSecure: '{{resolve:ssm-secure:/db/password:3}}'
`)
	r := &cfn{params: doc.get("Parameters"), resources: map[string]string{"Queue": "AWS::SQS::Queue"}, used: map[string]bool{}}
	cases := []struct {
		key, want string
		ok        bool
		why       string
	}{
		{key: "ref", want: "prod", ok: true},
		{key: "refLong", want: "prod", ok: true},
		{key: "refNoDefault", why: "no Default"},
		{key: "refResource", why: "AWS::SQS::Queue"},
		{key: "region", why: "Region"},
		{key: "partition", want: "aws", ok: true},
		{key: "sub", want: "orders-prod", ok: true},
		{key: "subLiteral", want: "cost-${Literal}", ok: true},
		{key: "subList", want: "prod-prod", ok: true},
		{key: "subAttr", why: "Queue"},
		{key: "subLong", want: "arn:aws:sqs:eu-west-1:123456789012:q-prod", ok: true},
		{key: "join", want: "a-prod-c", ok: true},
		{key: "getAtt", why: "AWS::SQS::Queue Queue"},
		{key: "getAttList", why: "AWS::SQS::Queue Queue"},
		{key: "import", why: "another stack"},
		{key: "if", why: "Fn::If"},
	}
	for _, c := range cases {
		got := r.resolve(doc.get("probe").get(c.key))
		if got.ok != c.ok || got.ok && got.text != c.want {
			t.Errorf("%s: got %+v, want ok=%v %q", c.key, got, c.ok, c.want)
		}
		if !c.ok && !strings.Contains(got.reason, c.why) {
			t.Errorf("%s: reason %q does not say %q", c.key, got.reason, c.why)
		}
	}
	sec := r.resolve(doc.get("probe").get("dynamic")).secret
	want := service.Secret{Source: service.SecretsManager, Key: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf", Property: "password", Version: "v2", Region: "eu-west-1"}
	if sec == nil || *sec != want {
		t.Errorf("dynamic reference = %+v, want %+v", sec, want)
	}
	sec = r.resolve(doc.get("probe").get("ssmSecure")).secret
	if sec == nil || sec.Source != service.ParameterStore || sec.Key != "/db/password" {
		t.Errorf("ssm-secure reference = %+v", sec)
	}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		name, data string
		want       bool
	}{
		{"get-function-configuration", `{"FunctionName": "f", "Runtime": "python3.12"}`, true},
		{"get-function", `{"Configuration": {"FunctionName": "f"}, "Code": {}}`, true},
		{"list-functions", `{"Functions": [{"FunctionName": "f"}]}`, true},
		{"list-event-source-mappings", `{"EventSourceMappings": []}`, true},
		{"one mapping", `{"UUID": "u", "EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}`, true},
		{"function URL", `{"FunctionUrl": "https://x.lambda-url.us-east-1.on.aws/", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}`, true},
		{"SAM JSON", `{"Transform": "AWS::Serverless-2016-10-31", "Resources": {"F": {"Type": "AWS::Serverless::Function"}}}`, true},
		{"SAM YAML", "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n", true},
		{"serverless.yml", "service: s\nprovider:\n  name: aws\nfunctions:\n  f:\n    handler: h\n", true},
		{"ECS task definition", `{"taskDefinition": {"family": "web", "containerDefinitions": []}}`, false},
		{"compose", "services:\n  web:\n    image: nginx\n", false},
		{"plain CloudFormation", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n", false},
		{"FunctionName alone", `{"FunctionName": "f"}`, false},
		{"null keys", `{"Configuration": null, "EventSourceMappings": null}`, false},
		{"broken JSON", `{"FunctionName": `, false},
		{"broken YAML", "functions: [\nprovider: {", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		if got := (Importer{}).Detect(source.File{Path: c.name, Data: []byte(c.data)}); got != c.want {
			t.Errorf("Detect(%s) = %v, want %v", c.name, got, c.want)
		}
	}
}
