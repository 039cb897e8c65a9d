package service

import "testing"

func TestUnpinnedImage(t *testing.T) {
	for img, want := range map[string]bool{
		"nginx":                                      true,
		"nginx:latest":                               true,
		"registry:5000/team/app":                     true,
		"registry:5000/team/app:1.2":                 false,
		"registry:5000/team/app:latest":              true,
		"app@sha256:abc":                             false,
		"public.ecr.aws/x/y:latest":                  true,
		"ghcr.io/o/r:2024.11.3-7f3c9e1":              false,
		"localhost:5000/app:latest@sha2":             false,
		"123.dkr.ecr.eu-west-1.amazonaws.com/app:v7": false,
	} {
		if got := UnpinnedImage(img); got != want {
			t.Errorf("UnpinnedImage(%q) = %v, want %v", img, got, want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"Payments_API":      "payments-api",
		"--x--":             "x",
		"123abc":            "svc-123abc",
		"":                  "service",
		"prod/orders.v2":    "prod-orders-v2",
		"ÜberService Name!": "berservice-name",
	} {
		got := SanitizeName(in)
		if got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
		if err := ValidateName(got); err != nil {
			t.Errorf("SanitizeName(%q) = %q is not valid: %v", in, got, err)
		}
	}
}

func TestValidateCatchesDanglingReferences(t *testing.T) {
	s := &Service{Name: "api", Containers: []Container{{Name: "api", ImageValue: "image", Env: []EnvVar{{Name: "X", Secret: "nope"}}}}}
	if err := s.Validate(); err == nil {
		t.Fatal("dangling image value and secret accepted")
	}
	s.AddValue("image", "", "placeholder")
	s.Secrets = []Secret{{Name: "nope", Source: SecretsManager, Key: "k"}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateCheckpoints(t *testing.T) {
	base := func() *Service {
		return &Service{
			Name:       "ledger",
			Containers: []Container{{Name: "function", Image: "ledger:1"}},
			Triggers: []Trigger{
				{Kind: TriggerKinesis, Name: "ledger-stream", Enabled: true},
				{Kind: TriggerSQS, Name: "topups", Enabled: true},
			},
		}
	}
	s := base()
	s.Checkpoints = []Checkpoint{{Trigger: "ledger-stream", Name: "ledger-ledger-stream-checkpoint"}}
	if err := s.Validate(); err != nil {
		t.Fatalf("a checkpoint of a stream trigger: %v", err)
	}
	for name, cp := range map[string][]Checkpoint{
		"unknown trigger": {{Trigger: "nope", Name: "a"}},
		"not a stream":    {{Trigger: "topups", Name: "a"}},
		"bad name":        {{Trigger: "ledger-stream", Name: "Ledger_Checkpoint"}},
		"name twice":      {{Trigger: "ledger-stream", Name: "a"}, {Trigger: "ledger-stream", Name: "a"}},
	} {
		s := base()
		s.Checkpoints = cp
		if err := s.Validate(); err == nil {
			t.Errorf("%s: Validate accepts %+v", name, cp)
		}
	}
}
