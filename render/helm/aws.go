package helm

import (
	"regexp"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// arn is the parts of an Amazon Resource Name:
// arn:partition:service:region:account:resource.
type arn struct {
	Partition, Service, Region, Account, Resource string
}

func parseARN(s string) (arn, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] == "" {
		return arn{}, false
	}
	return arn{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}, true
}

// sqsQueueURL returns the queue URL KEDA needs from a queue URL or ARN, and
// the region it names ("" when it names none).
func sqsQueueURL(source string) (url, region string) {
	if a, ok := parseARN(source); ok && a.Service == "sqs" {
		host := "sqs." + a.Region + ".amazonaws.com"
		switch a.Partition {
		case "aws-cn":
			host += ".cn"
		}
		return "https://" + host + "/" + a.Account + "/" + a.Resource, a.Region
	}
	// https://sqs.eu-west-1.amazonaws.com/123/q, or the legacy
	// https://eu-west-1.queue.amazonaws.com/123/q.
	if m := sqsURLRegion.FindStringSubmatch(source); m != nil {
		r := m[1]
		if r == "" {
			r = m[2]
		}
		return source, r
	}
	return source, ""
}

var sqsURLRegion = regexp.MustCompile(`^https?://(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)`)

// kinesisStream returns the stream name and region of a stream ARN or name.
func kinesisStream(source string) (name, region string) {
	if a, ok := parseARN(source); ok && a.Service == "kinesis" {
		return strings.TrimPrefix(a.Resource, "stream/"), a.Region
	}
	return source, ""
}

// dynamoDBTable returns the table name and region of a DynamoDB stream ARN
// (arn:aws:dynamodb:r:a:table/NAME/stream/LABEL) or a table name.
func dynamoDBTable(source string) (name, region string) {
	if a, ok := parseARN(source); ok && a.Service == "dynamodb" {
		res := strings.TrimPrefix(a.Resource, "table/")
		if i := strings.Index(res, "/"); i >= 0 {
			res = res[:i]
		}
		return res, a.Region
	}
	return source, ""
}

// mskIAM reports whether the brokers are Amazon MSK brokers on the IAM
// listener (port 9098), and their region.
func mskIAM(brokers []string) (bool, string) {
	if len(brokers) == 0 {
		return false, ""
	}
	region := ""
	for _, b := range brokers {
		m := mskBroker.FindStringSubmatch(b)
		if m == nil || m[2] != "9098" {
			return false, ""
		}
		region = m[1]
	}
	return true, region
}

var mskBroker = regexp.MustCompile(`\.kafka(?:-serverless)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?:([0-9]+)$`)

// parameterName returns the Parameter Store name of a parameter ARN or name.
// An ARN drops the leading slash of a hierarchical name
// (arn:...:parameter/app/db is /app/db), but not of a plain one
// (arn:...:parameter/db is db).
func parameterName(key string) (name, region string) {
	a, ok := parseARN(key)
	if !ok || a.Service != "ssm" || !strings.HasPrefix(a.Resource, "parameter/") {
		return key, ""
	}
	name = strings.TrimPrefix(a.Resource, "parameter/")
	if strings.Contains(name, "/") {
		name = "/" + name
	}
	return name, a.Region
}

// secretsManagerRegion returns the region a Secrets Manager ARN names.
func secretsManagerRegion(key string) string {
	if a, ok := parseARN(key); ok && a.Service == "secretsmanager" {
		return a.Region
	}
	return ""
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// secretVersion turns a Secrets Manager version stage or id into the form
// External Secrets reads: a stage as is, an id as uuid/<id>.
func secretVersion(v string) string {
	if uuidRE.MatchString(v) {
		return "uuid/" + v
	}
	return v
}

var ecrHost = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com`)

// inferRegion returns the AWS region the services' inputs name most often
// (in secret, queue and stream ARNs, queue URLs, MSK brokers, ECR image
// hosts), and how often; "" when they name none. Ties go to the first in
// alphabetical order, so the answer does not depend on input order.
func inferRegion(svcs []*service.Service) (string, int) {
	count := map[string]int{}
	add := func(r string) {
		if r != "" {
			count[r]++
		}
	}
	for _, s := range svcs {
		for _, sec := range s.Secrets {
			switch {
			case sec.Region != "":
				add(sec.Region)
			case sec.Source == service.SecretsManager:
				add(secretsManagerRegion(sec.Key))
			case sec.Source == service.ParameterStore:
				_, r := parameterName(sec.Key)
				add(r)
			}
		}
		for _, t := range s.Triggers {
			if t.Region != "" {
				add(t.Region)
				continue
			}
			switch t.Kind {
			case service.TriggerSQS:
				_, r := sqsQueueURL(t.Source)
				add(r)
			case service.TriggerKinesis:
				_, r := kinesisStream(t.Source)
				add(r)
			case service.TriggerDynamoDB:
				_, r := dynamoDBTable(t.Source)
				add(r)
			case service.TriggerKafka:
				_, r := mskIAM(t.Brokers)
				add(r)
			}
		}
		for _, list := range [][]service.Container{s.Containers, s.InitContainers, s.Sidecars} {
			for _, c := range list {
				if m := ecrHost.FindStringSubmatch(c.Image); m != nil {
					add(m[1])
				}
			}
		}
	}
	best, n := "", 0
	for _, r := range sortedKeys(count) {
		if count[r] > n {
			best, n = r, count[r]
		}
	}
	return best, n
}
