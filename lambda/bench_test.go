package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

// benchEvent is an API Gateway-sized event (~700 bytes).
var benchEvent = []byte(`{"resource":"/orders/{id}","path":"/orders/o-123","httpMethod":"GET","headers":{"Accept":"application/json","Host":"api.example.com","User-Agent":"bench","X-Amzn-Trace-Id":"Root=1-66322b00-0123456789abcdef01234567","X-Forwarded-For":"203.0.113.7","X-Forwarded-Port":"443","X-Forwarded-Proto":"https"},"queryStringParameters":null,"pathParameters":{"id":"o-123"},"stageVariables":null,"requestContext":{"accountId":"123456789012","apiId":"a1b2c3d4e5","httpMethod":"GET","identity":{"sourceIp":"203.0.113.7","userAgent":"bench"},"path":"/prod/orders/o-123","protocol":"HTTP/1.1","requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","requestTimeEpoch":1714564800000,"resourcePath":"/orders/{id}","stage":"prod"},"body":null,"isBase64Encoded":false}`)

var (
	inProcessOnce sync.Once
	inProcessNs   float64
)

// inProcess is the cost of one invocation of the same handler called in
// this process through aws-lambda-go's own handler wrapper (JSON decode
// and encode included): the floor any Runtime API adds to.
func inProcess(b *testing.B) float64 {
	// Timed by hand: testing.Benchmark cannot run inside a benchmark.
	inProcessOnce.Do(func() {
		h := awslambda.NewHandler(func(ev json.RawMessage) (json.RawMessage, error) { return ev, nil })
		ctx := context.Background()
		n, start := 0, time.Now()
		for time.Since(start) < 500*time.Millisecond {
			for range 100 {
				if _, err := h.Invoke(ctx, benchEvent); err != nil {
					b.Fatal(err)
				}
			}
			n += 100
		}
		inProcessNs = float64(time.Since(start).Nanoseconds()) / float64(n)
	})
	return inProcessNs
}

// BenchmarkInProcess calls the echo handler in process.
func BenchmarkInProcess(b *testing.B) {
	h := awslambda.NewHandler(func(ev json.RawMessage) (json.RawMessage, error) { return ev, nil })
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Invoke(ctx, benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRuntime runs the same echo handler, built with aws-lambda-go,
// as child processes behind the Runtime API: at concurrency 1 (one
// invocation at a time, as AWS's Runtime Interface Emulator serves them)
// and with a pool. It reports invocations per second, the latency the
// Runtime API adds to each invocation, and the per-invocation cost as a
// multiple of the in-process call.
func BenchmarkRuntime(b *testing.B) {
	fn := lambdatest.GoFunction(b)
	for _, conc := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			rt, err := lambda.New(lambda.Config{
				Command:     []string{fn, "echo"},
				Env:         []string{"PATH=" + os.Getenv("PATH")},
				Concurrency: conc,
				Prewarm:     conc,
				Function:    lambda.FunctionConfig{Name: "bench", Timeout: 10 * time.Second},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			// Warm every process.
			var wg sync.WaitGroup
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = rt.Invoke(context.Background(), lambda.Invocation{Payload: benchEvent})
				}()
			}
			wg.Wait()
			floor := inProcess(b)
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			if conc == 1 {
				for range b.N {
					resp, err := rt.Invoke(ctx, lambda.Invocation{Payload: benchEvent})
					if err != nil || resp.Err != nil {
						b.Fatalf("%v %v", err, resp.Err)
					}
				}
			} else {
				b.SetParallelism((conc + 1) / 2)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := rt.Invoke(ctx, lambda.Invocation{Payload: benchEvent})
						if err != nil || resp.Err != nil {
							b.Errorf("%v %v", err, resp.Err)
							return
						}
					}
				})
			}
			elapsed := time.Since(start)
			b.StopTimer()
			perInv := float64(elapsed.Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "inv/s")
			if conc == 1 {
				b.ReportMetric((perInv-floor)/1000, "added-µs/inv")
			}
			b.ReportMetric(perInv/floor, "x-in-process")
		})
	}
}
