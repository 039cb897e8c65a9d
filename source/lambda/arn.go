package lambda

import (
	"errors"
	"fmt"
	"strings"
)

// arn is a parsed Amazon Resource Name:
// arn:partition:service:region:account:resource.
type arn struct {
	Partition, Service, Region, Account, Resource string
}

func (a arn) String() string {
	return strings.Join([]string{"arn", a.Partition, a.Service, a.Region, a.Account, a.Resource}, ":")
}

// parseARN checks the shape every ARN shares; service-specific checks
// are the caller's.
func parseARN(s string) (arn, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return arn{}, fmt.Errorf("%q is not an ARN (arn:partition:service:region:account:resource)", s)
	}
	a := arn{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}
	if !strings.HasPrefix(a.Partition, "aws") {
		return arn{}, fmt.Errorf("ARN %q: unknown partition %q", s, a.Partition)
	}
	if a.Service == "" || a.Resource == "" {
		return arn{}, fmt.Errorf("ARN %q has no service or resource", s)
	}
	if a.Account != "" && !isAccount(a.Account) {
		return a, &placeholderError{arn: s, msg: fmt.Sprintf("ARN %q: account %q is not 12 digits", s, a.Account)}
	}
	if a.Region != "" && !isRegion(a.Region) {
		return a, &placeholderError{arn: s, msg: fmt.Sprintf("ARN %q: %q is not a region", s, a.Region)}
	}
	return a, nil
}

// placeholderError is an ARN of the right shape whose account or region
// is not one: documentation and sample projects write XXXXXX, <account>,
// ACCOUNT_ID or a redacted number there. parseARN returns the parsed
// fields with it, so a caller that can make the ARN a value to fill
// (its account is the user's to say) does, and the others refuse it.
type placeholderError struct{ arn, msg string }

func (e *placeholderError) Error() string { return e.msg }

// placeholderARN reports whether err is a placeholderError and, if so,
// why, for the reason of the value to fill.
func placeholderARN(err error) (string, bool) {
	var pe *placeholderError
	if errors.As(err, &pe) {
		return pe.msg + ": a placeholder or a redacted ARN, not the deployed one", true
	}
	return "", false
}

// parseARNOf parses an ARN and checks its service.
func parseARNOf(s string, services ...string) (arn, error) {
	a, err := parseARN(s)
	if _, ok := placeholderARN(err); err != nil && !ok {
		return a, err
	}
	for _, svc := range services {
		if a.Service == svc {
			return a, err
		}
	}
	return arn{}, fmt.Errorf("ARN %q names service %q, want %s", s, a.Service, strings.Join(services, " or "))
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// isRegion accepts region names such as us-east-1, eu-central-2,
// us-gov-west-1, cn-north-1, ap-southeast-7.
func isRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 {
		return false
	}
	for _, p := range parts[:len(parts)-1] {
		if p == "" {
			return false
		}
		for _, r := range p {
			if r < 'a' || r > 'z' {
				return false
			}
		}
	}
	last := parts[len(parts)-1]
	if last == "" {
		return false
	}
	for _, r := range last {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// functionARN is a Lambda function ARN, possibly qualified by a version
// or alias: arn:aws:lambda:us-east-1:123456789012:function:orders:live.
type functionARN struct {
	arn
	Name, Qualifier string
}

func parseFunctionARN(s string) (functionARN, error) {
	a, err := parseARNOf(s, "lambda")
	if _, ok := placeholderARN(err); err != nil && !ok {
		return functionARN{}, err
	}
	parts := strings.Split(a.Resource, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "function" || parts[1] == "" {
		return functionARN{}, fmt.Errorf("ARN %q is not a Lambda function ARN (…:function:<name>[:<qualifier>])", s)
	}
	f := functionARN{arn: a, Name: parts[1]}
	if len(parts) == 3 {
		f.Qualifier = parts[2]
	}
	// A placeholder account or region comes back with the name, which
	// is all some callers need.
	return f, err
}

// dnsSuffix is the domain of AWS endpoints in the ARN's partition.
func (a arn) dnsSuffix() string {
	switch a.Partition {
	case "aws-cn":
		return "amazonaws.com.cn"
	case "aws-iso":
		return "c2s.ic.gov"
	case "aws-iso-b":
		return "sc2s.sgov.gov"
	}
	return "amazonaws.com"
}

// queueURL derives an SQS queue URL from a queue ARN, the form the SQS API
// and KEDA's aws-sqs-queue scaler take.
func queueURL(a arn) string {
	return fmt.Sprintf("https://sqs.%s.%s/%s/%s", a.Region, a.dnsSuffix(), a.Account, a.Resource)
}

// lastSegment returns what follows the last '/' or ':' of a resource.
func lastSegment(s string) string {
	if i := strings.LastIndexAny(s, "/:"); i >= 0 {
		return s[i+1:]
	}
	return s
}
