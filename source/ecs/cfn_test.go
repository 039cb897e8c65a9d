package ecs

import "testing"

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"WebTaskDef":                    "web-task-def",
		"worker_task":                   "worker-task",
		"HTTPServer":                    "http-server",
		"ApiTaskDefF1E2D3C4":            "api-task-def-f1e2d3c4",
		"orders-api":                    "orders-api",
		"--X--":                         "x",
		"WorkerStackApiTaskDefF1E2D3C4": "worker-stack-api-task-def-f1e2d3c4",
	} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCDKNames(t *testing.T) {
	if got := cdkConstructID("WorkerStack/Api/TaskDef/Resource", "X"); got != "Api" {
		t.Errorf("cdkConstructID = %q", got)
	}
	if got := cdkConstructID("", "TaskDef1"); got != "TaskDef1" {
		t.Errorf("cdkConstructID without a path = %q", got)
	}
	if !cdkGenerated("WorkerStackApiTaskDefF1E2D3C4", "WorkerStack/ApiTaskDef/Resource") {
		t.Error("CDK's generated family not recognised")
	}
	if cdkGenerated("orders-api", "WorkerStack/ApiTaskDef/Resource") || cdkGenerated("WorkerStackApiTaskDefF1E2D3C4", "") {
		t.Error("a family the user set taken for CDK's")
	}
}

func TestResolve(t *testing.T) {
	r := &cfnResolver{params: map[string]any{"Tag": "1.2", "Port": float64(80)}, names: map[string]string{"TD": "web"}, types: map[string]string{"Q": "AWS::SQS::Queue"}}
	for _, c := range []struct {
		in   any
		want any
	}{
		{map[string]any{"Ref": "Tag"}, "1.2"},
		{map[string]any{"Ref": "TD"}, "web"},
		{map[string]any{"Ref": "Q"}, "${Ref Q (AWS::SQS::Queue)}"},
		{map[string]any{"Ref": "AWS::Region"}, "${Ref AWS::Region}"},
		{map[string]any{"Fn::Sub": "img:${Tag}-${AWS::Region}"}, "img:1.2-${AWS::Region}"},
		{map[string]any{"Fn::Sub": []any{"${A}:${Port}", map[string]any{"A": "x"}}}, "x:80"},
		{map[string]any{"Fn::Join": []any{"/", []any{"a", map[string]any{"Ref": "Tag"}}}}, "a/1.2"},
		{map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}}, `${Fn::GetAtt ["Q","Arn"]}`},
		{"${!Ref Tag}", "1.2"},
		{"${!GetAtt Q.Arn}", "${!GetAtt Q.Arn}"},
		{map[string]any{"Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/cdk-hnb659fds-container-assets-${AWS::AccountId}-${AWS::Region}:abc1234def"},
			"${CDK asset image abc1234def built and pushed by cdk deploy: push it to a registry the cluster pulls from}"},
	} {
		if got := r.resolve(c.in); got != c.want {
			t.Errorf("resolve(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
