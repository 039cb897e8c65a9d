package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	lambdatest.Cleanup()
	os.Exit(code)
}

func kafkaFunction(t *testing.T) string {
	t.Helper()
	return lambdatest.Build(t, "github.com/cutoverhq/cutover/lambda/kafka/internal/kafkafn")
}

// A real function (aws-lambda-go, events.KafkaEvent) under the real
// runtime, fed through `--source kafka` flags as serve builds the source:
// every record once, in order per partition, the failed batch retried.
func TestKafkaRealFunction(t *testing.T) {
	c := newCluster(t, 2)
	log := filepath.Join(t.TempDir(), "records")
	rt, err := lambda.New(lambda.Config{
		Command:     []string{kafkaFunction(t)},
		Env:         append(os.Environ(), "KAFKAFN_LOG="+log),
		Concurrency: 2,
		Function:    lambda.FunctionConfig{Name: "ledger-projector", Timeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := range int32(2) {
		for i := range 25 {
			v := fmt.Sprintf("entry-%d", i)
			if p == 1 && i == 7 {
				v = "fail-once-" + v
			}
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	src, err := lambda.NewSource("kafka", []string{"--brokers", strings.Join(c.ListenAddrs(), ","), "--topic", topic,
		"--consumer-group", "ledger-projector", "--starting-position", "TRIM_HORIZON", "--batch-size", "10", "--batch-window", "0.1"},
		lambda.SourceOptions{Function: lambda.FunctionConfig{Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	src.(*Source).cfg.RetryBackoff = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rt) }()
	for p := range int32(2) {
		lambdatest.WaitFor(t, "committed", 30*time.Second, func() bool { return committed(t, c, "ledger-projector", p) == 25 })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	perPartition := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		perPartition[f[0]] = append(perPartition[f[0]], f[1])
	}
	for p := range 2 {
		key := PartitionKey(topic, int32(p))
		var want []string
		for i := range 25 {
			want = append(want, fmt.Sprint(i))
		}
		if strings.Join(perPartition[key], ",") != strings.Join(want, ",") {
			t.Errorf("%s handled offsets %v, want 0..24 once each in order", key, perPartition[key])
		}
	}
}

// TLS with the broker's root CA from the secret the importer names
// (SERVER_ROOT_CA_CERTIFICATE), as a self-managed cluster with a private
// CA is reached.
func TestKafkaServerRootCA(t *testing.T) {
	caPEM, serverCert := testCA(t)
	c := newCluster(t, 1, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}}))
	secret, _ := json.Marshal(map[string]string{"certificate": string(caPEM)})
	t.Setenv("KAFKA_CA", string(secret))

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	produce(t, c, []int32{0}, 0, 3, kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))

	cfg := testConfig(c, "g-tls")
	cfg.Auth = []Auth{{Type: AuthServerRootCA, SecretEnv: "KAFKA_CA"}}
	rec := newRecorder(t, nil)
	start(t, cfg, rec)
	lambdatest.WaitFor(t, "consumed over TLS", 20*time.Second, func() bool { return len(rec.offsets(PartitionKey(topic, 0))) == 3 })

	// Without the CA, the broker's certificate is not trusted.
	t.Setenv("OTHER_CA", `{"certificate":"`+strings.ReplaceAll(string(otherCA(t)), "\n", `\n`)+`"}`)
	cfg.Auth = []Auth{{Type: AuthServerRootCA, SecretEnv: "OTHER_CA"}}
	cfg.ConsumerGroup = "g-tls-untrusted"
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := src.Run(ctx, newRecorder(t, nil)); err == nil || ctx.Err() != nil {
		t.Errorf("untrusted broker: Run = %v", err)
	}
}

// Mutual TLS with the client certificate and key from the secret the
// importer names (CLIENT_CERTIFICATE_TLS_AUTH), for a broker that
// requires one.
func TestKafkaClientCertificate(t *testing.T) {
	caPEM, serverCert, caCert, caKey := newCA(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := newCluster(t, 1, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}))

	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "ledger-projector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(clientKey)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	clientSecret, _ := json.Marshal(map[string]string{"certificate": string(certPEM), "privateKey": string(keyPEM)})
	caSecret, _ := json.Marshal(map[string]string{"certificate": string(caPEM)})
	t.Setenv("KAFKA_CLIENT_CERT", string(clientSecret))
	t.Setenv("KAFKA_CA", string(caSecret))

	clientPair, _ := tls.X509KeyPair(certPEM, keyPEM)
	produce(t, c, []int32{0}, 0, 3, kgo.DialTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientPair}}))

	cfg := testConfig(c, "g-mtls")
	cfg.Auth = []Auth{{Type: AuthClientCert, SecretEnv: "KAFKA_CLIENT_CERT"}, {Type: AuthServerRootCA, SecretEnv: "KAFKA_CA"}}
	rec := newRecorder(t, nil)
	start(t, cfg, rec)
	lambdatest.WaitFor(t, "consumed over mutual TLS", 20*time.Second, func() bool { return len(rec.offsets(PartitionKey(topic, 0))) == 3 })

	// The same without the client certificate is refused by the broker.
	cfg.Auth = cfg.Auth[1:]
	cfg.ConsumerGroup = "g-mtls-anonymous"
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := src.Run(ctx, newRecorder(t, nil)); err == nil || ctx.Err() != nil {
		t.Errorf("without a client certificate: Run = %v", err)
	}
}

// testCA makes a CA and a server certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T) ([]byte, tls.Certificate) {
	caPEM, server, _, _ := newCA(t)
	return caPEM, server
}

// newCA makes a CA and a server certificate for 127.0.0.1 signed by it,
// and returns the CA's certificate and key to sign more.
func newCA(t *testing.T) ([]byte, tls.Certificate, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test kafka CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca, caKey
}

func otherCA(t *testing.T) []byte {
	pemCA, _ := testCA(t)
	return pemCA
}
