package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

func TestParseSecret(t *testing.T) {
	cases := []struct {
		in   string
		want service.Secret
		err  string
	}{
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
			want: service.Secret{Source: service.SecretsManager, Key: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf", Region: "eu-west-1"}},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf:password::",
			want: service.Secret{Source: service.SecretsManager, Key: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf", Property: "password", Region: "eu-west-1"}},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf::AWSPREVIOUS:",
			want: service.Secret{Source: service.SecretsManager, Key: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf", Version: "AWSPREVIOUS", Region: "eu-west-1"}},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf:user::6a1b2c3d-0000-4000-8000-000000000000",
			want: service.Secret{Source: service.SecretsManager, Key: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf", Property: "user", Version: "6a1b2c3d-0000-4000-8000-000000000000", Region: "eu-west-1"}},
		{in: "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:db",
			want: service.Secret{Source: service.SecretsManager, Key: "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:db", Region: "us-gov-west-1"}},
		{in: "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/url",
			want: service.Secret{Source: service.ParameterStore, Key: "/prod/db/url", Region: "us-east-1"}},
		{in: "arn:aws:ssm:us-east-1:123456789012:parameter/flat-name",
			want: service.Secret{Source: service.ParameterStore, Key: "flat-name", Region: "us-east-1"}},
		{in: "/prod/db/url", want: service.Secret{Source: service.ParameterStore, Key: "/prod/db/url"}},
		{in: "db.url_v2", want: service.Secret{Source: service.ParameterStore, Key: "db.url_v2"}},
		{in: "arn:aws:ssm:${AWS_REGION}:${ACCOUNT_ID}:parameter/prod/db",
			want: service.Secret{Source: service.ParameterStore, Key: "/prod/db", Region: ""}},
		{in: "arn:aws:ssm:REGION:ACCOUNT_ID:parameter/prod/db",
			want: service.Secret{Source: service.ParameterStore, Key: "/prod/db"}},
		{in: "arn:aws:secretsmanager:your-region:xxxxxxxxxxxx:secret:prod/db-AbCdEf:password::",
			want: service.Secret{Source: service.SecretsManager, Key: "prod/db-AbCdEf", Property: "password"}},
		{in: "arn:aws:secretsmanager:eu-west-1:ACCOUNT:secret:prod/db",
			want: service.Secret{Source: service.SecretsManager, Key: "prod/db", Region: "eu-west-1"}},
		{in: "", err: "empty"},
		{in: "prod db url", err: "neither an ARN nor an SSM parameter name"},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:db", err: "want ...:secret:name"},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:", err: "want ...:secret:name"},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db:k:AWSCURRENT:id", err: "not both"},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db:k:s:i:extra", err: "only jsonKey"},
		{in: "arn:aws:secretsmanager:eu-west-1:1234:secret:db", err: "not 12 digits"},
		{in: "arn:aws:secretsmanager:Ireland:123456789012:secret:db", err: "not a region"},
		{in: "arn:aws:secretsmanager::123456789012:secret:db", err: "region and account are required"},
		{in: "arn:aws:ssm:us-east-1:123456789012:document/x", err: "want ...:parameter/name"},
		{in: "arn:aws:s3:::bucket/key", err: "names a s3 resource"},
		{in: "arn:aws:ssm", err: "malformed ARN"},
		{in: "arn:azure:ssm:us-east-1:123456789012:parameter/x", err: "unknown partition"},
	}
	for _, c := range cases {
		got, err := parseSecret(c.in)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseSecret(%q) error = %v, want one saying %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("parseSecret(%q): %v", c.in, err)
		case got != c.want:
			t.Errorf("parseSecret(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestQuantities(t *testing.T) {
	cpu := map[int64]string{1: "1m", 100: "98m", 128: "125m", 256: "250m", 512: "500m", 768: "750m", 1024: "1", 1536: "1500m", 4096: "4"}
	for units, want := range cpu {
		if got := cpuQty(units); got != want {
			t.Errorf("cpuQty(%d) = %q, want %q", units, got, want)
		}
	}
	mem := map[int64]string{50: "50Mi", 512: "512Mi", 1024: "1Gi", 1536: "1536Mi", 30720: "30Gi"}
	for mib, want := range mem {
		if got := memQty(mib); got != want {
			t.Errorf("memQty(%d) = %q, want %q", mib, got, want)
		}
	}
}

func TestTaskSizes(t *testing.T) {
	cpu := map[string]int64{"1024": 1024, "1 vCPU": 1024, "0.25 vcpu": 256, ".5vCPU": 512, "16 vCPU": 16384}
	for in, want := range cpu {
		got, err := taskCPUUnits(num{raw: in, set: true})
		if err != nil || got != want {
			t.Errorf("taskCPUUnits(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	mem := map[string]int64{"2048": 2048, "2 GB": 2048, "2GB": 2048, "0.5 GB": 512, "512 MiB": 512, "30gb": 30720}
	for in, want := range mem {
		got, err := taskMemMiB(num{raw: in, set: true})
		if err != nil || got != want {
			t.Errorf("taskMemMiB(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"lots", "-1", "1.5", "vCPU", "{}", "true"} {
		if _, err := taskCPUUnits(num{raw: bad, set: true}); err == nil {
			t.Errorf("taskCPUUnits(%q) accepted", bad)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	images := map[string]bool{
		"<IMAGE1_NAME>": true, "${IMAGE}": true, "{{IMAGE}}": true, "{{ .Values.image }}": true,
		"#{Octopus.Action.Package.Image}": true, "__IMAGE__": true, "$IMAGE": true, "": true, "  ": true,
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:${GIT_SHA}": true,
		"nginx:1.27": false, "ghcr.io/acme/api@sha256:0123": false,
		"registry.example.com:5000/team/app_name:v1":             false,
		"AWS_ACCOUNT_ID.dkr.ecr.us-east-1.amazonaws.com/web:1.2": true,
		"xxxxxxxxxxxx.dkr.ecr.eu-west-1.amazonaws.com/web:1.2":   true,
		"123456789012.dkr.ecr.REGION.amazonaws.com/web:1.2":      true,
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.2":   false,
	}
	for in, want := range images {
		if got := imagePlaceholder(in); got != want {
			t.Errorf("imagePlaceholder(%q) = %v, want %v", in, got, want)
		}
	}
	env := map[string]bool{
		"${DB_HOST}": true, "postgres://${DB_HOST}:5432/app": true, "#{TemplateBucket}": true, "{{ db }}": true,
		"<b>bold</b>": false, "100%": false, "$5 off": false, "a__b__c": false, "plain": false,
	}
	for in, want := range env {
		if got := envPlaceholder(in); got != want {
			t.Errorf("envPlaceholder(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestLooksSecret(t *testing.T) {
	cases := []struct {
		name, value string
		want        bool
	}{
		{"DB_PASSWORD", "hunter2", true},
		{"STRIPE_API_KEY", "sk_live_abc", true},
		{"JWT_SECRET", "x", true},
		{"DATABASE_URL", "postgres://app:hunter2@db:5432/x", true},
		{"DATABASE_URL", "postgres://db:5432/x", false},
		{"DB_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x", false},
		{"TOKEN_TTL", "3600", false},
		{"API_KEY_HEADER", "X-Api-Key", false},
		{"PASSWORD_MIN_LENGTH", "12", false},
		{"ENABLE_TOKEN", "true", false},
		{"SECRET", "", false},
		{"LOG_LEVEL", "debug", false},
		{"SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXX", true},
		{"ORDERS_WEBHOOK_URL", "https://hooks.example.com/orders/9f8e7d6c5b4a", true},
		{"ORDERS_WEBHOOK_URL", "https://hooks.example.com/orders", false},
	}
	for _, c := range cases {
		if got := looksSecret(c.name, c.value); got != c.want {
			t.Errorf("looksSecret(%s=%s) = %v, want %v", c.name, c.value, got, c.want)
		}
	}
}

func TestLabelText(t *testing.T) {
	cases := map[string]string{
		"team": "team", "Cost Center": "Cost-Center", "compliance:scope": "compliance-scope",
		"owner@bank.example": "owner-bank.example", "-x-": "x", "@@@": "",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	}
	for in, want := range cases {
		if got := labelText(in); got != want {
			t.Errorf("labelText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPortName(t *testing.T) {
	used := map[string]bool{}
	cases := []struct {
		ecs  string
		port service.Port
		want string
	}{
		{"web", service.Port{ContainerPort: 80}, "web"},
		{"payments-api-8080-tcp", service.Port{ContainerPort: 8080, AppProtocol: "http"}, "http"},
		{"", service.Port{ContainerPort: 8081, AppProtocol: "http"}, "http-8081"},
		{"Metrics_Port", service.Port{ContainerPort: 9100}, "metrics-port"},
		{"", service.Port{ContainerPort: 8125, Protocol: "UDP"}, "udp"},
		{"9000", service.Port{ContainerPort: 9000}, "tcp"},
	}
	for _, c := range cases {
		got := portName(c.ecs, c.port, used)
		used[got] = true
		if got != c.want {
			t.Errorf("portName(%q, %d) = %q, want %q", c.ecs, c.port.ContainerPort, got, c.want)
		}
	}
}

// TestYAMLSafeKeepsLines checks the rewrite that lets the YAML-based
// position index read JSON escapes YAML refuses: keys and lines survive.
func TestYAMLSafeKeepsLines(t *testing.T) {
	data := []byte("{\n  \"a\\/b\": \"x\\/y \\ud83d\\ude00\",\n  \"family\": \"w\\u00e9b\",\n  \"bad\": \"\xff\",\n  \"nel\": \"a\u0085b\uffffc\"\n}")
	if !json.Valid(data) {
		t.Fatal("test input is not JSON")
	}
	if _, err := source.ParsePositions("f.json", data); err == nil {
		t.Log("ParsePositions accepts the raw input now; yamlSafe may be unnecessary")
	}
	pos, err := source.ParsePositions("f.json", yamlSafe(data))
	if err != nil {
		t.Fatalf("ParsePositions(yamlSafe): %v", err)
	}
	if got := pos.Line("a/b"); got != 2 {
		t.Errorf("line of a/b = %d, want 2", got)
	}
	if got := pos.Line("family"); got != 3 {
		t.Errorf("line of family = %d, want 3", got)
	}
	if got := pos.Line("nel"); got != 5 {
		t.Errorf("line of nel = %d, want 5", got)
	}
}

// importFiles converts the files and fails the test on an error.
func importFiles(t *testing.T, files map[string]string) []*service.Service {
	t.Helper()
	var in []source.File
	for _, name := range sortedKeys(files) {
		in = append(in, source.File{Path: name, Data: []byte(files[name])})
	}
	svcs, err := Importer{}.Import(context.Background(), in, source.Options{})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return svcs
}

func sortedKeys(m map[string]string) []string { return service.SortedKeys(m) }

// findings returns the report lines that mention all of the words.
func findings(s *service.Service, words ...string) []string {
	var out []string
	for _, f := range s.Report.Sorted() {
		line := f.String()
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

const webTD = `{"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx:1.27", "cpu": 256, "memory": 512,
  "portMappings": [{"containerPort": 8080}, {"containerPort": 9090}]}]}`

func TestTwoServicesRunOneTaskDefinition(t *testing.T) {
	svcs := importFiles(t, map[string]string{
		"td.json": webTD,
		"services.json": `{"services": [
		  {"serviceName": "web-blue", "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod", "taskDefinition": "web", "desiredCount": 2},
		  {"serviceName": "web-green", "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod", "taskDefinition": "web", "desiredCount": 0}]}`,
	})
	if len(svcs) != 2 || svcs[0].Name != "web-blue" || svcs[1].Name != "web-green" {
		t.Fatalf("got %d services %v, want web-blue and web-green", len(svcs), names(svcs))
	}
	if *svcs[0].Replicas != 2 || *svcs[1].Replicas != 0 {
		t.Errorf("replicas %d and %d, want 2 and 0", *svcs[0].Replicas, *svcs[1].Replicas)
	}
	// Each service has the whole task definition in its own report.
	for _, s := range svcs {
		if len(findings(s, "td.json", "containerDefinitions[0].image")) != 1 {
			t.Errorf("%s: the task definition's image is not in its report", s.Name)
		}
	}
}

func names(svcs []*service.Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, s.Name)
	}
	return out
}

func TestUnusedRevisionBesideItsServiceIsRefused(t *testing.T) {
	td := func(rev int, image string) string {
		return fmt.Sprintf(`{"taskDefinition": {"family": "web", "revision": %d, "containerDefinitions": [{"name": "app", "image": %q, "memory": 256}]}}`, rev, image)
	}
	svc := `{"serviceName": "web", "cluster": "prod", "taskDefinition": "web:8", "desiredCount": 1}`
	_, err := Importer{}.Import(context.Background(), []source.File{
		{Path: "a.json", Data: []byte(td(7, "web:7"))}, {Path: "b.json", Data: []byte(td(8, "web:8"))}, {Path: "svc.json", Data: []byte(svc)},
	}, source.Options{})
	var ie *source.InputError
	if !errors.As(err, &ie) || ie.File != "a.json" || ie.Field != "taskDefinition.revision" || !strings.Contains(err.Error(), "pass only the revision the service runs") {
		t.Fatalf("want revision 7 refused, got %v", err)
	}
}

func TestCloudMapAndDaemon(t *testing.T) {
	svcs := importFiles(t, map[string]string{
		"td.json": webTD,
		"svc.json": `{"serviceName": "web", "cluster": "prod", "taskDefinition": "web", "schedulingStrategy": "DAEMON",
		  "serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-4x2rk5lq3ahkbzpa", "containerName": "app", "containerPort": 9090}]}`,
	})
	s := svcs[0]
	if s.Expose == nil || s.Expose.Port != 9090 || !s.Expose.Internal {
		t.Errorf("expose = %+v, want internal port 9090 from the registry", s.Expose)
	}
	if len(findings(s, "serviceRegistries[0]", "warning", "svc.cluster.local")) != 1 {
		t.Errorf("no Cloud Map warning:\n%s", strings.Join(findings(s), "\n"))
	}
	if len(findings(s, "schedulingStrategy", "warning", "DaemonSet")) != 1 {
		t.Errorf("no DAEMON warning")
	}
}

func TestScalingWithoutScalableTargetAndByFamily(t *testing.T) {
	policies := `{"ScalingPolicies": [
	  {"PolicyName": "mem", "ServiceNamespace": "ecs", "ResourceId": "service/prod/web", "ScalableDimension": "ecs:service:DesiredCount",
	   "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 75.5,
	   "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}, "DisableScaleIn": true}},
	  {"PolicyName": "steps", "ServiceNamespace": "ecs", "ResourceId": "service/prod/web", "ScalableDimension": "ecs:service:DesiredCount",
	   "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
	   "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}], "Cooldown": 60},
	   "Alarms": [{"AlarmName": "web-queue-depth-high"}]}]}`
	svcs := importFiles(t, map[string]string{"td.json": webTD, "policies.json": policies})
	s := svcs[0]
	if s.Scaling == nil {
		t.Fatal("no scaling")
	}
	want := service.Scaling{MinReplicas: 1, MaxReplicas: 2, TargetMemoryPercent: 76, ScaleDownStabilizationSeconds: defaultScaleInCooldown}
	if *s.Scaling != want {
		t.Errorf("scaling = %+v, want %+v", *s.Scaling, want)
	}
	for _, words := range [][]string{
		{"ScalingPolicies[0].ResourceId", "warning", "by name"},
		{"ScalingPolicies[0].ResourceId", "describe-scalable-targets"},
		{"DisableScaleIn", "warning"},
		{"ScalingPolicies[1]:", "warning", "web-queue-depth-high", "KEDA"},
	} {
		if len(findings(s, words...)) == 0 {
			t.Errorf("no finding with %q in:\n%s", words, strings.Join(findings(s), "\n"))
		}
	}
}

func TestScalableTargetWithoutConvertiblePolicy(t *testing.T) {
	svcs := importFiles(t, map[string]string{
		"td.json":  webTD,
		"svc.json": `{"serviceName": "web", "cluster": "prod", "taskDefinition": "web", "desiredCount": 3}`,
		"targets.json": `{"ScalableTargets": [{"ServiceNamespace": "ecs", "ResourceId": "service/prod/web",
		  "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 0, "MaxCapacity": 10}]}`,
	})
	s := svcs[0]
	if s.Scaling != nil || s.Replicas == nil || *s.Replicas != 3 {
		t.Errorf("want fixed 3 replicas and no scaling, got replicas %v scaling %+v", s.Replicas, s.Scaling)
	}
	if len(findings(s, "MinCapacity", "warning", "between 0 and 10")) != 1 {
		t.Errorf("no warning that scaling was not converted:\n%s", strings.Join(findings(s), "\n"))
	}
}

func TestSecondLoadBalancerAndMissingTargetGroup(t *testing.T) {
	svcs := importFiles(t, map[string]string{
		"td.json": webTD,
		"svc.json": `{"serviceName": "web", "cluster": "prod", "taskDefinition": "web", "desiredCount": 2, "loadBalancers": [
		  {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-public/1111111111111111", "containerName": "app", "containerPort": 8080},
		  {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-admin/2222222222222222", "containerName": "app", "containerPort": 9090}]}`,
	})
	s := svcs[0]
	if s.Expose == nil || s.Expose.Port != 8080 || s.Expose.Internal {
		t.Errorf("expose = %+v, want public port 8080", s.Expose)
	}
	r := s.Main().Readiness
	if r == nil || r.TCPPort != 8080 {
		t.Errorf("readiness = %+v, want a TCP check on 8080 while the target group is unknown", r)
	}
	if s.Main().PreStopSleepSeconds != preStopSeconds || *s.TerminationGracePeriodSeconds != defaultStopTimeout+preStopSeconds {
		t.Errorf("preStop %d grace %d", s.Main().PreStopSleepSeconds, *s.TerminationGracePeriodSeconds)
	}
	for _, words := range [][]string{
		{"loadBalancers[0].targetGroupArn", "describe-target-groups"},
		{"loadBalancers[1].containerPort", "warning", "port 9090"},
	} {
		if len(findings(s, words...)) == 0 {
			t.Errorf("no finding with %q in:\n%s", words, strings.Join(findings(s), "\n"))
		}
	}
}

// A load balancer that sent to a sidecar was reported as "add a Service
// port for it by hand", and the Service lacked the port.
func TestLoadBalancerToSidecarPutsItsPortOnTheService(t *testing.T) {
	svcs := importFiles(t, map[string]string{
		"td.json": `{"family": "web", "networkMode": "awsvpc", "containerDefinitions": [
		  {"name": "app", "image": "registry.example/web:1.0", "memory": 512, "portMappings": [{"containerPort": 8080}],
		   "dependsOn": [{"containerName": "envoy", "condition": "START"}]},
		  {"name": "envoy", "image": "envoyproxy/envoy:v1.31.2", "memory": 128, "portMappings": [{"containerPort": 8443}, {"containerPort": 9901}]}]}`,
		"svc.json": `{"serviceName": "web", "cluster": "prod", "taskDefinition": "web", "desiredCount": 2, "loadBalancers": [
		  {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1111111111111111", "containerName": "app", "containerPort": 8080},
		  {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-tls/2222222222222222", "containerName": "envoy", "containerPort": 8443}]}`,
	})
	s := svcs[0]
	if len(s.Sidecars) != 1 || s.Sidecars[0].Name != "envoy" {
		t.Fatalf("sidecars = %+v, want envoy", s.Sidecars)
	}
	served := map[int32]bool{}
	for _, p := range s.Sidecars[0].Ports {
		served[p.ContainerPort] = p.Served
	}
	if !served[8443] || served[9901] {
		t.Errorf("envoy's served ports = %v, want 8443 only: the load balancer sent to it, and 9901 was the task's own", served)
	}
	if len(findings(s, "by hand")) > 0 {
		t.Errorf("a finding still says to add the port by hand:\n%s", strings.Join(findings(s, "by hand"), "\n"))
	}
	for _, words := range [][]string{
		{"loadBalancers[1]", "Service port 8443 → sidecars[envoy]"},
		{"containerDefinitions[1].portMappings[0].containerPort", "mapped", "Service port 8443"},
		{"containerDefinitions[1].portMappings[0].containerPort", "sidecars[envoy].readinessProbe.tcpSocket"},
	} {
		if len(findings(s, words...)) == 0 {
			t.Errorf("no finding with %q in:\n%s", words, strings.Join(findings(s), "\n"))
		}
	}
	if f := findings(s, "containerDefinitions[1].portMappings[1].containerPort"); len(f) != 1 || strings.Contains(f[0], "Service") {
		t.Errorf("port 9901 findings = %q, want one, not on the Service", f)
	}
}

func TestDependsOnCycleIsRefused(t *testing.T) {
	td := `{"family": "x", "containerDefinitions": [
	  {"name": "a", "image": "a:1", "memory": 64, "dependsOn": [{"containerName": "b", "condition": "START"}]},
	  {"name": "b", "image": "b:1", "memory": 64, "dependsOn": [{"containerName": "a", "condition": "START"}]}]}`
	_, err := Importer{}.Import(context.Background(), []source.File{{Path: "td.json", Data: []byte(td)}}, source.Options{})
	var ie *source.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("want a cycle InputError, got %v", err)
	}
}

// TestLongVolumeNamesDoNotLoop: two volumes whose names agree on their
// first 63 characters made the unique-name loop spin forever, because the
// numeric suffix was cut off again by the length limit. Found by FuzzImport.
func TestLongVolumeNamesDoNotLoop(t *testing.T) {
	long := strings.Repeat("v", 70)
	td := fmt.Sprintf(`{"family": "x", "volumes": [{"name": %q}, {"name": %q}],
	  "containerDefinitions": [{"name": "a", "image": "a:1", "memory": 64,
	  "mountPoints": [{"sourceVolume": %q, "containerPath": "/a"}, {"sourceVolume": %q, "containerPath": "/b"}]}]}`, long+"1", long+"2", long+"1", long+"2")
	svcs := importFiles(t, map[string]string{"td.json": td})
	v := svcs[0].Volumes
	if len(v) != 2 || v[0].Name == v[1].Name || len(v[1].Name) > 63 {
		t.Errorf("volumes %+v", v)
	}
}

func TestHealthyWithoutHealthCheckWarns(t *testing.T) {
	td := `{"family": "x", "containerDefinitions": [
	  {"name": "app", "image": "a:1", "memory": 64, "dependsOn": [{"containerName": "proxy", "condition": "HEALTHY"}]},
	  {"name": "proxy", "image": "p:1", "memory": 64}]}`
	s := importFiles(t, map[string]string{"td.json": td})[0]
	if len(s.Sidecars) != 1 || s.Sidecars[0].Name != "proxy" || s.Main().Name != "app" {
		t.Fatalf("app %s sidecars %+v", s.Main().Name, s.Sidecars)
	}
	if len(findings(s, "dependsOn[0]", "warning", "no health check")) != 1 {
		t.Errorf("no warning:\n%s", strings.Join(findings(s), "\n"))
	}
}

func TestNullsEverywhereAreNotErrors(t *testing.T) {
	td := `{"taskDefinition": {"family": "x", "cpu": null, "memory": null, "volumes": null, "tags": null,
	  "runtimePlatform": null, "ephemeralStorage": null, "placementConstraints": null,
	  "containerDefinitions": [{"name": "a", "image": null, "cpu": null, "memory": null, "portMappings": null,
	  "environment": [null, {"name": null, "value": null}], "secrets": [null], "healthCheck": {"command": null},
	  "linuxParameters": {"capabilities": null, "tmpfs": null}, "dependsOn": null, "mountPoints": [null],
	  "logConfiguration": null, "essential": null, "user": null}]}, "tags": null}`
	s := importFiles(t, map[string]string{"td.json": td})[0]
	if s.Main().ImageValue != "image" {
		t.Errorf("a null image must become a value to fill, got %+v", s.Main())
	}
	if s.EffectiveKind() != service.KindWorker {
		t.Errorf("kind %s", s.Kind)
	}
}

func TestQuoteTemplates(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"cpu": ${cpu}}`, `{"cpu": "${cpu}"}`},
		{`{"cpu": $${cpu}, "port": {{ .Port }}}`, `{"cpu": "$${cpu}", "port": "{{ .Port }}"}`},
		{`[{"image": "${image}", "n": ${a.b["c"]}}]`, `[{"image": "${image}", "n": "${a.b[\"c\"]}"}]`},
		{`{"esc": "a\"${x}", "m": ${m}}`, `{"esc": "a\"${x}", "m": "${m}"}`},
		// Already JSON, nothing to do; an expression across lines is left
		// as it is, and so is the syntax error it makes.
		{`{"cpu": "${cpu}"}`, ``},
		{"{\"cpu\": ${\n}}", ``},
		{`{"cpu": env.CPU}`, ``},
	}
	for _, c := range cases {
		got := string(quoteTemplates([]byte(c.in)))
		if got != c.want {
			t.Errorf("quoteTemplates(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRespellKeys(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"Family": "x", "ContainerDefinitions": [{"Name": "a", "entrypoint": ["b"]}]}`,
			`{"family": "x", "containerDefinitions": [{"name": "a", "entryPoint": ["b"]}]}`},
		// The user's own keys stay as written.
		{`[{"name": "a", "LogConfiguration": {"Options": {"Name": "cloudwatch", "Region": "x"}}, "dockerLabels": {"Image": "y"}}]`,
			`[{"name": "a", "logConfiguration": {"options": {"Name": "cloudwatch", "Region": "x"}}, "dockerLabels": {"Image": "y"}}]`},
		// Elastic Load Balancing spells its own fields in PascalCase.
		{`{"TargetGroups": [{"healthcheckpath": "/", "targetgrouparn": "arn"}]}`, `{"TargetGroups": [{"HealthCheckPath": "/", "TargetGroupArn": "arn"}]}`},
		// Values are never touched; nothing to do gives nil.
		{`{"family": "Image"}`, ``},
	}
	for _, c := range cases {
		if got := string(respellKeys([]byte(c.in))); got != c.want {
			t.Errorf("respellKeys(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestTagsDoNotBlockConversion pins that a tags field of any shape decodes:
// an object of keys (Terraform's form) refused a valid task definition with
// "tags: want a list, found object".
func TestTagsDoNotBlockConversion(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   []tag
		object bool
		bad    string
	}{
		{in: `[{"key": "team", "value": "core"}]`, want: []tag{{Key: "team", Value: "core", path: "[0]"}}},
		{in: `[{"Key": "team", "Value": "core"}, "x"]`, want: []tag{{Key: "team", Value: "core", path: "[0]"}, {path: "[1]", bad: "a tag is an object with a string key and value, not a string"}}},
		{in: `{"b": "2", "a": 1, "c": null}`, object: true, want: []tag{{Key: "b", Value: "2", path: "b"}, {Key: "a", Value: "1", path: "a"}, {Key: "c", path: "c"}}},
		{in: `{"x": {"y": 1}}`, object: true, want: []tag{{path: "x", bad: "a tag's value is a string, not an object"}}},
		{in: `"team=core"`, bad: "a string"},
		{in: `null`},
	} {
		var v struct {
			Tags tagList `json:"tags"`
		}
		if err := json.Unmarshal([]byte(`{"tags": `+tc.in+`}`), &v); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(v.Tags.tags, tc.want) || v.Tags.object != tc.object || v.Tags.bad != tc.bad {
			t.Errorf("%s: got %+v, want tags %+v object %v bad %q", tc.in, v.Tags, tc.want, tc.object, tc.bad)
		}
	}
}

// describe-task-definition output whose metadata was of another type than
// the API's (a hand-edited or re-serialised export) was refused with exit
// 2 ("taskDefinition.taskDefinitionArn: want a string, found object"):
// metadata is reported and ignored; a field cutover maps still fails,
// naming file, line and field.
func TestMetadataOfAnotherTypeIsNoError(t *testing.T) {
	td := `{"taskDefinition": {
  "taskDefinitionArn": {"Fn::Sub": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:4"},
  "family": "web",
  "revision": ["4"],
  "containerDefinitions": [{"name": "app", "image": %s, "memory": 256}],
  "status": 1,
  "registeredAt": {"$date": "2024-10-25T07:27:14Z"}
}}`
	svc := `{"services": [{"serviceName": "web", "serviceArn": 7, "clusterArn": ["prod"], "taskDefinition": "web", "desiredCount": 1}]}`
	svcs := importFiles(t, map[string]string{"td.json": fmt.Sprintf(td, `"nginx:1.27"`), "svc.json": svc})
	s := svcs[0]
	for _, words := range [][]string{
		{"taskDefinition.taskDefinitionArn", "dropped", "want an ARN, found an object"},
		{"taskDefinition.revision", "dropped", "want a whole number, found a list"},
		{"taskDefinition.status", "dropped", "set by AWS"},
		{"taskDefinition.registeredAt", "dropped", "set by AWS"},
		{"services[0].serviceArn", "dropped", "found a number"},
		{"services[0].clusterArn", "dropped", "found a list"},
	} {
		if got := findings(s, words...); len(got) != 1 {
			t.Errorf("%d findings with %q, want 1, in:\n%s", len(got), words, strings.Join(findings(s), "\n"))
		}
	}

	_, err := Importer{}.Import(context.Background(), []source.File{{Path: "td.json", Data: []byte(fmt.Sprintf(td, `{"repo": "nginx"}`))}}, source.Options{})
	var ie *source.InputError
	if !errors.As(err, &ie) || ie.File != "td.json" || ie.Line != 5 || ie.Field != "taskDefinition.containerDefinitions.image" {
		t.Errorf("an image that is an object: got %v, want an InputError at td.json:5 naming the image", err)
	}
}
