package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Authentication types: Lambda's SourceAccessConfiguration types, which
// the Lambda importer writes as --auth, and AWS_MSK_IAM for MSK's IAM
// access control.
const (
	AuthBasic        = "BASIC_AUTH"
	AuthSCRAM256     = "SASL_SCRAM_256_AUTH"
	AuthSCRAM512     = "SASL_SCRAM_512_AUTH"
	AuthClientCert   = "CLIENT_CERTIFICATE_TLS_AUTH"
	AuthServerRootCA = "SERVER_ROOT_CA_CERTIFICATE"
	AuthMSKIAM       = "AWS_MSK_IAM"
)

// Auth is one authentication setting: its type and the environment
// variable holding its Secrets Manager secret (the JSON Lambda reads:
// {"username","password"} for SASL, {"certificate","privateKey"} for a
// client certificate, {"certificate"} for a root CA). The secret reaches
// the variable through an ExternalSecret; it is never logged.
type Auth struct {
	Type string
	// SecretEnv names the variable; empty for AWS_MSK_IAM, which uses
	// the pod's AWS credentials (IRSA).
	SecretEnv string
}

// mskPorts are MSK's listener ports and what each one speaks.
var mskPorts = map[string]string{
	"9092": "plaintext", "9094": "tls", "9096": "scram", "9098": "iam",
}

// security works out TLS and SASL for the client from the settings, and
// for MSK without explicit settings from the brokers' port.
func (s *Source) security(ctx context.Context) ([]kgo.Opt, error) {
	cfg := s.cfg
	auths := cfg.Auth
	tlsOn := len(auths) > 0
	if len(auths) == 0 && s.eventSource == SourceMSK {
		switch mskPort(cfg.Brokers) {
		case "iam":
			auths, tlsOn = []Auth{{Type: AuthMSKIAM}}, true
			s.log.Info("MSK brokers on port 9098: IAM access control with the pod's AWS credentials")
		case "scram":
			return nil, fmt.Errorf("MSK brokers on port 9096 take SASL/SCRAM: give --auth %s --auth-secret-env NAME", AuthSCRAM512)
		case "tls":
			tlsOn = true
		}
	}
	if cfg.TLS != nil {
		tlsOn = *cfg.TLS
	}
	var tc *tls.Config
	if tlsOn {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	var mechs []sasl.Mechanism
	for _, a := range auths {
		switch a.Type {
		case AuthBasic, AuthSCRAM256, AuthSCRAM512:
			var sec struct{ Username, Password string }
			if err := readSecret(a, &sec); err != nil {
				return nil, err
			}
			if sec.Username == "" || sec.Password == "" {
				return nil, fmt.Errorf("--auth %s: the secret in $%s has no username or password", a.Type, a.SecretEnv)
			}
			switch a.Type {
			case AuthBasic:
				mechs = append(mechs, plain.Auth{User: sec.Username, Pass: sec.Password}.AsMechanism())
			case AuthSCRAM256:
				mechs = append(mechs, scram.Auth{User: sec.Username, Pass: sec.Password}.AsSha256Mechanism())
			default:
				mechs = append(mechs, scram.Auth{User: sec.Username, Pass: sec.Password}.AsSha512Mechanism())
			}
		case AuthClientCert:
			var sec struct {
				Certificate        string `json:"certificate"`
				PrivateKey         string `json:"privateKey"`
				PrivateKeyPassword string `json:"privateKeyPassword"`
			}
			if err := readSecret(a, &sec); err != nil {
				return nil, err
			}
			if sec.PrivateKeyPassword != "" {
				return nil, fmt.Errorf("--auth %s: the private key in $%s is encrypted (privateKeyPassword); store it unencrypted in the secret, which Secrets Manager encrypts at rest", a.Type, a.SecretEnv)
			}
			cert, err := tls.X509KeyPair([]byte(sec.Certificate), []byte(sec.PrivateKey))
			if err != nil {
				return nil, fmt.Errorf("--auth %s: the certificate or private key in $%s is not a PEM key pair", a.Type, a.SecretEnv)
			}
			if tc == nil {
				tc = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tc.Certificates = append(tc.Certificates, cert)
		case AuthServerRootCA:
			var sec struct {
				Certificate string `json:"certificate"`
			}
			if err := readSecret(a, &sec); err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(sec.Certificate)) {
				return nil, fmt.Errorf("--auth %s: the secret in $%s holds no PEM certificate", a.Type, a.SecretEnv)
			}
			if tc == nil {
				tc = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tc.RootCAs = pool
		case AuthMSKIAM:
			m, err := mskIAM(ctx, s.cfg.Region)
			if err != nil {
				return nil, err
			}
			mechs = append(mechs, m)
		default:
			return nil, fmt.Errorf("--auth %q is not one of %s, %s, %s, %s, %s, %s", a.Type, AuthBasic, AuthSCRAM256, AuthSCRAM512, AuthClientCert, AuthServerRootCA, AuthMSKIAM)
		}
	}
	var opts []kgo.Opt
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if len(mechs) > 0 {
		opts = append(opts, kgo.SASL(mechs...))
	}
	return opts, nil
}

// readSecret decodes the JSON secret in an Auth's variable. Errors name
// the variable, never its content.
func readSecret(a Auth, v any) error {
	if a.SecretEnv == "" {
		return fmt.Errorf("--auth %s needs --auth-secret-env NAME, the variable holding its secret", a.Type)
	}
	raw, ok := os.LookupEnv(a.SecretEnv)
	if !ok || raw == "" {
		return fmt.Errorf("--auth %s: $%s is not set (the ExternalSecret that fills it may not be synced)", a.Type, a.SecretEnv)
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return fmt.Errorf("--auth %s: $%s does not hold the JSON secret Lambda reads", a.Type, a.SecretEnv)
	}
	return nil
}

// mskPort says what MSK listener the brokers point at, when they agree.
func mskPort(brokers []string) string {
	kind := ""
	for _, b := range brokers {
		_, port, err := net.SplitHostPort(strings.TrimSpace(b))
		if err != nil {
			return ""
		}
		k := mskPorts[port]
		if kind != "" && k != kind {
			return ""
		}
		kind = k
	}
	return kind
}

// mskIAM is SASL AWS_MSK_IAM with the SDK's credentials, fetched (and
// refreshed) for each connection.
func mskIAM(ctx context.Context, region string) (sasl.Mechanism, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("MSK IAM: cannot load AWS configuration: %w", err)
	}
	return saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
		c, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return saslaws.Auth{}, err
		}
		return saslaws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken, UserAgent: "cutover-lambda"}, nil
	}), nil
}
