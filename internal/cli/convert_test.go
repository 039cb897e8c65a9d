package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/audit/export"
)

// TestConvertEvidencesOneRolePerEnvironment: the audit record of a
// convert run names each environment's own IAM role (production the
// input's, the others the role to create and the value that holds it),
// so the evidence report finds no environment sharing production's
// identity. (Every environment used to be recorded, and rendered, with
// the ECS task role: "shares IAM role … with prod".)
func TestConvertEvidencesOneRolePerEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "migration")
	loc := "file:" + filepath.Join(t.TempDir(), "audit.log")
	_, stderr, code := run(t, append([]string{"convert", "-q", "--out", out, "--audit", loc,
		"--account-id", "staging=310987654321", "--account-id", "123456789012",
		"--oidc-provider", "oidc.eks.eu-west-1.amazonaws.com/id/ABC"}, ecsExample...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var recs []audit.Record
	if _, err := audit.Verify(context.Background(), loc, audit.VerifyOptions{Visit: func(e audit.Entry) { recs = append(recs, e.Record) }}); err != nil {
		t.Fatal(err)
	}
	var d audit.ConvertData
	if len(recs) != 1 || recs[0].DecodeData(&d) != nil {
		t.Fatalf("records %+v", recs)
	}
	roles := map[string]string{}
	for _, p := range d.Placements {
		roles[p.Environment] = p.Role
		if p.ServiceAccount != "payments-api" {
			t.Errorf("%s: service account %q", p.Environment, p.ServiceAccount)
		}
	}
	want := map[string]string{
		"dev":     "role payments-api-dev to create (fill.roleArnDev)",
		"staging": "role payments-api-staging to create (fill.roleArnStaging)",
		"prod":    "arn:aws:iam::481926735012:role/payments-api-task",
	}
	for env, w := range want {
		if roles[env] != w {
			t.Errorf("%s: role %q, want %q", env, roles[env], w)
		}
	}

	rep, err := export.Build(context.Background(), loc, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range rep.Sections {
		if s.ID == "environment-segregation" {
			found = true
			if s.Status != export.Evidenced || len(s.Rows) != 3 {
				t.Errorf("segregation: %s: %s %+v", s.Status, s.Summary, s.Rows)
			}
		}
	}
	if !found {
		t.Error("no environment-segregation section")
	}

	// The accounts reached the trust policies: staging's own, and the
	// account given for every other environment.
	for file, account := range map[string]string{"payments-api-staging": "310987654321", "payments-api-dev": "123456789012"} {
		b, err := os.ReadFile(filepath.Join(out, "iam", file+".trust-policy.json"))
		if err != nil || !strings.Contains(string(b), "arn:aws:iam::"+account+":oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC") {
			t.Errorf("%s: %v\n%s", file, err, b)
		}
	}
}

func TestConvertPerEnvironmentFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"--account-id", "nope=123456789012"},
		{"--account-id", "dev=12345"},
		{"--account-id", "123456789012", "--account-id", "210987654321"},
		{"--account-id", "dev=123456789012", "--account-id", "dev=210987654321"},
		{"--oidc-provider", "=x"},
		{"--oidc-provider", "qa=oidc.eks.eu-west-1.amazonaws.com/id/X"},
	} {
		out := filepath.Join(t.TempDir(), "m")
		if _, stderr, code := run(t, append(append([]string{"convert", "-q", "--out", out}, args...), ecsExample...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}
