package sqs

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// newClient builds an SQS client from the SDK's default configuration:
// credentials from the environment, a web identity token (IRSA), the pod
// identity agent or the instance; region and endpoint from the arguments
// when set. It returns the region in force.
func newClient(ctx context.Context, region, endpoint string) (*awssqs.Client, string, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, "", fmt.Errorf("no region: give --region, a queue URL of the form https://sqs.<region>.amazonaws.com/…, or AWS_REGION")
	}
	c := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = &endpoint
		}
	})
	return c, cfg.Region, nil
}
