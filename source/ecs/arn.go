package ecs

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// arn is an Amazon Resource Name split into its parts:
// arn:partition:service:region:account:resource.
type arn struct {
	Partition, Service, Region, Account, Resource string
}

var (
	partitionRE = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	accountRE   = regexp.MustCompile(`^\d{12}$`)
	// ssmNameRE is what Parameter Store allows in a parameter name.
	ssmNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-/]+$`)
	// smNameRE is what Secrets Manager allows in a secret name.
	smNameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@\-]+$`)
)

// parseARN splits s and checks the parts every ARN has. Region and account
// may hold a CI placeholder (arn:aws:ssm:${AWS_REGION}:...): such input is
// converted, and the caller reports the placeholder as a value to fill.
func parseARN(s string) (arn, error) {
	if !strings.HasPrefix(s, "arn:") {
		return arn{}, fmt.Errorf("%q is not an ARN (arn:partition:service:region:account:resource)", s)
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) < 6 {
		return arn{}, fmt.Errorf("malformed ARN %q: want arn:partition:service:region:account:resource", s)
	}
	a := arn{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}
	switch {
	case !partitionRE.MatchString(a.Partition) && !hasPlaceholder(a.Partition):
		return arn{}, fmt.Errorf("malformed ARN %q: unknown partition %q", s, a.Partition)
	case a.Service == "":
		return arn{}, fmt.Errorf("malformed ARN %q: no service", s)
	case a.Region != "" && !regionRE.MatchString(a.Region) && !hasPlaceholder(a.Region) && !redactedRegion(a.Region):
		return arn{}, fmt.Errorf("malformed ARN %q: %q is not a region", s, a.Region)
	case a.Account != "" && !accountRE.MatchString(a.Account) && a.Account != "aws" && !hasPlaceholder(a.Account) && !redactedAccount(a.Account):
		return arn{}, fmt.Errorf("malformed ARN %q: account %q is not 12 digits", s, a.Account)
	case a.Resource == "":
		return arn{}, fmt.Errorf("malformed ARN %q: no resource", s)
	}
	return a, nil
}

// redactedAccountRE matches what people write instead of an account id
// when they publish a task definition or a template: a word (ACCOUNT_ID,
// your-account-id, AWS_ACCOUNT) or a mask (xxxxxxxxxxxx, ************,
// 1234xxxx5678). An account id is twelve digits, so neither can be one.
var redactedAccountRE = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z_\-]*|[0-9xX*#]*[xX*#][0-9xX*#]*)$`)

// redactedRegionRE matches a word written instead of a region: a
// variable's name (REGION, AWS_REGION) or a word saying so (your-region).
// A misspelt region ("Ireland", "eu-west") stays an error.
var redactedRegionRE = regexp.MustCompile(`^([A-Z][A-Z0-9_]*|(?i:[a-z_\-]*region[a-z_\-]*))$`)

// redactedRegion reports whether an ARN's region field is a stand-in.
func redactedRegion(region string) bool {
	return !regionRE.MatchString(region) && redactedRegionRE.MatchString(region)
}

// redactedAccount reports whether an ARN's account field is a stand-in
// for the real account id.
func redactedAccount(account string) bool { return redactedAccountRE.MatchString(account) }

// arnPlaceholder reports whether an ARN (or a name that stands for one)
// cannot be used as it is: it holds a template variable or its account id
// was redacted. Such a reference becomes a value the user fills.
func arnPlaceholder(s string) bool {
	if hasPlaceholder(s) {
		return true
	}
	if !strings.HasPrefix(s, "arn:") {
		return false
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 {
		return false
	}
	return parts[4] != "" && parts[4] != "aws" && !accountRE.MatchString(parts[4]) && redactedAccount(parts[4]) ||
		parts[3] != "" && redactedRegion(parts[3])
}

// placeholderWhat says what is wrong with a reference arnPlaceholder
// reports, for the report.
func placeholderWhat(s string) string {
	if hasPlaceholder(s) {
		return "the placeholder " + s
	}
	parts := strings.SplitN(s, ":", 6)
	var what []string
	if parts[3] != "" && redactedRegion(parts[3]) {
		what = append(what, fmt.Sprintf("region %q", parts[3]))
	}
	if parts[4] != "" && parts[4] != "aws" && !accountRE.MatchString(parts[4]) && redactedAccount(parts[4]) {
		what = append(what, fmt.Sprintf("account id %q", parts[4]))
	}
	if len(what) == 1 {
		return fmt.Sprintf("%s, whose %s stands in for the real one", s, what[0])
	}
	return fmt.Sprintf("%s, whose %s stand in for the real ones", s, strings.Join(what, " and "))
}

// parseSecret turns a secrets[].valueFrom into a reference. ECS accepts a
// Secrets Manager ARN, optionally with :jsonKey:versionStage:versionId, an
// SSM parameter ARN, or a bare parameter name when the parameter is in the
// task's region.
func parseSecret(valueFrom string) (service.Secret, error) {
	v := strings.TrimSpace(valueFrom)
	if v == "" {
		return service.Secret{}, fmt.Errorf("valueFrom is empty: name a Secrets Manager secret or an SSM parameter")
	}
	if !strings.HasPrefix(v, "arn:") {
		if !ssmNameRE.MatchString(v) && !hasPlaceholder(v) {
			return service.Secret{}, fmt.Errorf("%q is neither an ARN nor an SSM parameter name", v)
		}
		return service.Secret{Source: service.ParameterStore, Key: v}, nil
	}
	a, err := parseARN(v)
	if err != nil {
		return service.Secret{}, err
	}
	switch a.Service {
	case "secretsmanager":
		if a.Region == "" || a.Account == "" {
			return service.Secret{}, fmt.Errorf("malformed Secrets Manager ARN %q: region and account are required", v)
		}
		// secret:name[:jsonKey[:versionStage[:versionId]]]
		rp := strings.Split(a.Resource, ":")
		if rp[0] != "secret" || len(rp) < 2 || rp[1] == "" {
			return service.Secret{}, fmt.Errorf("malformed Secrets Manager ARN %q: want ...:secret:name", v)
		}
		if len(rp) > 5 {
			return service.Secret{}, fmt.Errorf("malformed Secrets Manager ARN %q: after the secret name only jsonKey:versionStage:versionId may follow", v)
		}
		if !smNameRE.MatchString(rp[1]) && !hasPlaceholder(rp[1]) {
			return service.Secret{}, fmt.Errorf("malformed Secrets Manager ARN %q: %q is not a secret name", v, rp[1])
		}
		rp = append(rp, "", "", "")
		s := service.Secret{
			Source:   service.SecretsManager,
			Key:      strings.Join([]string{"arn", a.Partition, a.Service, a.Region, a.Account, "secret", rp[1]}, ":"),
			Property: rp[2],
			Region:   a.Region,
		}
		if redactedAccount(a.Account) || redactedRegion(a.Region) {
			// An ARN with a made-up account or region would name no
			// secret; the name does, in the account and region the
			// store reads.
			s.Key = rp[1]
		}
		if redactedRegion(a.Region) || hasPlaceholder(a.Region) {
			s.Region = ""
		}
		stage, id := rp[3], rp[4]
		if stage != "" && id != "" {
			return service.Secret{}, fmt.Errorf("malformed Secrets Manager ARN %q: give a version stage or a version id, not both", v)
		}
		s.Version = stage + id
		return s, nil
	case "ssm":
		if a.Region == "" || a.Account == "" {
			return service.Secret{}, fmt.Errorf("malformed SSM parameter ARN %q: region and account are required", v)
		}
		name, ok := strings.CutPrefix(a.Resource, "parameter/")
		if !ok || name == "" || strings.HasPrefix(name, "/") {
			return service.Secret{}, fmt.Errorf("malformed SSM parameter ARN %q: want ...:parameter/name", v)
		}
		if !ssmNameRE.MatchString(name) && !hasPlaceholder(name) {
			return service.Secret{}, fmt.Errorf("malformed SSM parameter ARN %q: %q is not a parameter name", v, name)
		}
		// A hierarchical name starts with "/", which the ARN folds into
		// "parameter/"; a flat name has no "/" at all.
		if strings.Contains(name, "/") {
			name = "/" + name
		}
		region := a.Region
		if redactedRegion(region) || hasPlaceholder(region) {
			region = "" // the store's own region
		}
		return service.Secret{Source: service.ParameterStore, Key: name, Region: region}, nil
	default:
		return service.Secret{}, fmt.Errorf("ARN %q names a %s resource: ECS reads secrets only from Secrets Manager (secretsmanager) or Parameter Store (ssm)", v, a.Service)
	}
}

// parseRoleARN checks an IAM role ARN (arn:aws:iam::123456789012:role/name).
func parseRoleARN(s string) error {
	a, err := parseARN(s)
	if err != nil {
		return err
	}
	if a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/") || len(a.Resource) == len("role/") {
		return fmt.Errorf("malformed IAM role ARN %q: want arn:aws:iam::<account>:role/<name>", s)
	}
	return nil
}

// taskDefRef is what a service's taskDefinition names: a full ARN,
// family:revision, or a family alone (the latest ACTIVE revision).
type taskDefRef struct {
	Family   string
	Revision string
}

func parseTaskDefRef(s string) (taskDefRef, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "arn:") {
		a, err := parseARN(s)
		if err != nil {
			return taskDefRef{}, err
		}
		rest, ok := strings.CutPrefix(a.Resource, "task-definition/")
		if a.Service != "ecs" || !ok || rest == "" {
			return taskDefRef{}, fmt.Errorf("malformed task definition ARN %q: want arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>", s)
		}
		s = rest
	}
	fam, rev, _ := strings.Cut(s, ":")
	if fam == "" {
		return taskDefRef{}, fmt.Errorf("task definition %q names no family", s)
	}
	return taskDefRef{Family: fam, Revision: rev}, nil
}

// clusterName returns the name in a cluster ARN or the name itself; ECS
// calls the cluster "default" when a service does not name one.
func clusterName(s string) string {
	if s == "" {
		return "default"
	}
	if strings.HasPrefix(s, "arn:") {
		if i := strings.LastIndex(s, "cluster/"); i >= 0 {
			return s[i+len("cluster/"):]
		}
	}
	return s
}

// clusterFromServiceARN returns the cluster of a new-format service ARN
// (arn:aws:ecs:region:account:service/cluster/name); "" for the old format.
func clusterFromServiceARN(s string) string {
	i := strings.Index(s, ":service/")
	if i < 0 {
		return ""
	}
	parts := strings.Split(s[i+len(":service/"):], "/")
	if len(parts) == 2 {
		return parts[0]
	}
	return ""
}

var s3ARNRE = regexp.MustCompile(`^arn:aws[a-z\-]*:s3:::[a-z0-9][a-z0-9.\-]{1,62}/.+$`)
