package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/cutoverhq/cutover/lambda"
	lambdahttp "github.com/cutoverhq/cutover/lambda/http"
	"github.com/cutoverhq/cutover/lambda/job"
	"github.com/cutoverhq/cutover/lambda/kafka"
	"github.com/cutoverhq/cutover/lambda/schedule"
	"github.com/cutoverhq/cutover/lambda/sqs"
	"github.com/cutoverhq/cutover/lambda/streams"
)

func newLambdaCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lambda",
		Short: "Run unmodified Lambda functions: serve them the Lambda Runtime API, fed from HTTP, SQS, Kafka, Kinesis, DynamoDB Streams, a schedule or a Job",
		Long: `lambda runs a Lambda function's own code, image and runtime client on
Kubernetes: "serve" starts the function as a child process behind the Lambda
Runtime API and feeds it invocations from event sources; "invoke" runs one
invocation locally, as "sam local invoke" does.`,
		Example: `  cutover lambda serve --source http --route "apigw-v2 $default" -- /lambda-entrypoint.sh app.handler
  cutover lambda invoke --event event.json -- ./bootstrap`,
	}
	cmd.AddCommand(newLambdaServeCmd(e), newLambdaInvokeCmd(e))
	return cmd
}

// serveOptions are serve's own flags; each source's follow its --source.
type serveOptions struct {
	concurrency  int
	prewarm      int
	timeout      time.Duration
	throttleWait time.Duration
	initTimeout  time.Duration
	grace        time.Duration
	metrics      string
	function     string
	memory       int
	account      string
	logLevel     slog.Level
	sources      []sourceArgs
	command      []string
}

type sourceArgs struct {
	name string
	args []string
}

const serveUsage = `Usage:
  cutover lambda serve [serve flags] --source KIND [source flags] [--source KIND [source flags]]... -- COMMAND [ARGS...]

COMMAND is the function's process: a provided runtime's bootstrap, or the
image's entrypoint and handler (/lambda-entrypoint.sh app.handler). serve
starts it with AWS_LAMBDA_RUNTIME_API pointing at its own Runtime API and the
environment Lambda gives a function, one invocation per process at a time.

Serve flags (anywhere before --):
  --concurrency N        function processes, so invocations at once (default 1)
  --timeout D            invocation timeout: 30s, or seconds (default $AWS_LAMBDA_FUNCTION_TIMEOUT, else 3s)
  --throttle-wait D      how long an invocation waits for a free process; 0 refuses at once
                         as Lambda does (HTTP 429) (default: the timeout)
  --prewarm N            processes started and through init before the first invocation (default 1)
  --init-timeout D       limit on a process's init (default 10s)
  --grace D              after SIGTERM, time for in-flight work before the function is
                         stopped (default: the timeout + 2s)
  --metrics ADDR         /metrics, /healthz, /readyz ("" for none) (default :9102)
  --function-name NAME   (default $AWS_LAMBDA_FUNCTION_NAME)
  --memory MB            AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default $AWS_LAMBDA_FUNCTION_MEMORY_SIZE, else 128)
  --account ID           the account in the function ARN (default 000000000000)
  --log-level LEVEL      debug, info, warn, error (default info); logs are JSON on stderr

`

const serveExamples = `
Examples:
  cutover lambda serve --source http --port 8080 --route "apigw-v1 POST /payments/{id}/authorize" \
      -- /lambda-entrypoint.sh app.handler
  cutover lambda serve --concurrency 4 --source sqs --queue-url https://sqs.eu-west-1.amazonaws.com/123456789012/orders \
      --batch-size 10 --report-batch-item-failures -- ./bootstrap
  cutover lambda serve --source kinesis --stream-arn arn:aws:kinesis:eu-west-1:123456789012:stream/payments \
      --starting-position TRIM_HORIZON --batch-size 100 --checkpoint-configmap settlement-payments -- ./bootstrap
  cutover lambda serve --source schedule --input '{"mode":"full"}' -- /lambda-entrypoint.sh settle.run
  cutover lambda serve --source job --items - -- ./bootstrap < events.jsonl
`

func newLambdaServeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "serve [flags] --source KIND [source flags]... -- COMMAND [ARGS...]",
		Short:   "Run a function behind the Lambda Runtime API, fed from event sources",
		Long:    "serve runs COMMAND behind the Lambda Runtime API and feeds it from the sources; see --help for every flag.",
		Example: strings.TrimPrefix(strings.TrimPrefix(serveExamples, "\n"), "Examples:\n"),
		// Flags after each --source belong to that source: serve reads
		// them itself.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "--" {
					break
				}
				if a == "-h" || a == "--help" {
					fmt.Fprint(e.stdout, serveHelp())
					return nil
				}
			}
			o, err := parseServeArgs(args, os.Getenv)
			if err != nil {
				return usageError(err)
			}
			return runServe(cmd.Context(), e, o)
		},
	}
	return cmd
}

func serveHelp() string {
	return serveUsage + strings.Join([]string{lambdahttp.Usage, sqs.Usage, kafka.Usage, streams.KinesisUsage, streams.DynamoDBUsage, schedule.Usage, job.Usage}, "\n\n") +
		"\n\nKnown sources: " + strings.Join(lambda.SourceNames(), ", ") + "\n" + serveExamples
}

// parseServeArgs reads serve's words: its own flags anywhere before "--",
// each --source with the words after it, then the command.
func parseServeArgs(args []string, getenv func(string) string) (*serveOptions, error) {
	o := &serveOptions{concurrency: 1, prewarm: 1, initTimeout: 10 * time.Second, metrics: ":9102", account: "000000000000", logLevel: slog.LevelInfo, throttleWait: -1}
	o.function = getenv("AWS_LAMBDA_FUNCTION_NAME")
	if v := getenv("AWS_LAMBDA_FUNCTION_TIMEOUT"); v != "" {
		d, err := parseSeconds(v)
		if err != nil {
			return nil, fmt.Errorf("AWS_LAMBDA_FUNCTION_TIMEOUT: %v", err)
		}
		o.timeout = d
	}
	if v := getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE %q is not a number of MB", v)
		}
		o.memory = n
	}
	dash := -1
	for i, a := range args {
		if a == "--" {
			dash = i
			break
		}
	}
	if dash < 0 || dash == len(args)-1 {
		return nil, errors.New(`no function command: end serve's flags with "--" and the function's bootstrap or entrypoint, e.g. -- /lambda-entrypoint.sh app.handler`)
	}
	o.command = args[dash+1:]

	global := map[string]func(string) error{
		"concurrency":   intFlag(&o.concurrency, 1),
		"prewarm":       intFlag(&o.prewarm, 0),
		"memory":        intFlag(&o.memory, 1),
		"timeout":       durFlag(&o.timeout, true),
		"throttle-wait": durFlag(&o.throttleWait, false),
		"init-timeout":  durFlag(&o.initTimeout, true),
		"grace":         durFlag(&o.grace, false),
		"metrics":       func(v string) error { o.metrics = v; return nil },
		"function-name": func(v string) error { o.function = v; return nil },
		"account":       func(v string) error { o.account = v; return nil },
		"log-level": func(v string) error {
			return o.logLevel.UnmarshalText([]byte(v))
		},
	}
	words := args[:dash]
	var cur *sourceArgs
	for i := 0; i < len(words); i++ {
		w := words[i]
		name, val, hasVal := "", "", false
		if strings.HasPrefix(w, "--") {
			name, val, hasVal = strings.Cut(w[2:], "=")
		}
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(words) {
				return "", fmt.Errorf("--%s needs a value", name)
			}
			i++
			return words[i], nil
		}
		switch {
		case name == "source":
			v, err := value()
			if err != nil {
				return nil, err
			}
			o.sources = append(o.sources, sourceArgs{name: v})
			cur = &o.sources[len(o.sources)-1]
		case global[name] != nil:
			v, err := value()
			if err != nil {
				return nil, err
			}
			if err := global[name](v); err != nil {
				return nil, fmt.Errorf("--%s: %v", name, err)
			}
		case cur != nil:
			cur.args = append(cur.args, w)
		default:
			return nil, fmt.Errorf("unknown serve flag %q: a source's flags follow its --source (cutover lambda serve --help)", w)
		}
	}
	if len(o.sources) == 0 {
		return nil, fmt.Errorf("no event source: add --source with one of %s", strings.Join(lambda.SourceNames(), ", "))
	}
	if o.prewarm > o.concurrency {
		o.prewarm = o.concurrency
	}
	return o, nil
}

func intFlag(p *int, least int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		if n < least {
			return fmt.Errorf("%d is below %d", n, least)
		}
		*p = n
		return nil
	}
}

func durFlag(p *time.Duration, positive bool) func(string) error {
	return func(v string) error {
		d, err := parseSeconds(v)
		if err != nil {
			return err
		}
		if positive && d <= 0 || d < 0 {
			return fmt.Errorf("%s is not a positive duration", v)
		}
		*p = d
		return nil
	}
}

// parseSeconds reads a duration, or a number of seconds as Lambda's
// settings are written.
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (30s) or a number of seconds", v)
	}
	return d, nil
}

// functionConfig is what the function is told about itself: serve's
// flags, else what the container's environment says.
func (o *serveOptions) functionConfig(getenv func(string) string) lambda.FunctionConfig {
	return lambda.FunctionConfig{
		Name:     o.function,
		Version:  getenv("AWS_LAMBDA_FUNCTION_VERSION"),
		MemoryMB: o.memory,
		Timeout:  o.timeout,
		Region:   getenv("AWS_REGION"),
		Account:  o.account,
		Handler:  getenv("_HANDLER"),
	}
}

func runServe(ctx context.Context, e *env, o *serveOptions) error {
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: o.logLevel}))
	// client-go (the stream sources' Lease and checkpoint ConfigMap) logs
	// through klog: keep stderr one JSON stream.
	klog.SetSlogLogger(log.With("component", "client-go"))
	reg := prometheus.NewRegistry()
	fc := o.functionConfig(os.Getenv)
	if fc.Timeout == 0 {
		fc.Timeout = 3 * time.Second
	}
	throttle := o.throttleWait
	switch {
	case throttle < 0:
		throttle = fc.Timeout
	case throttle == 0:
		throttle = -1 // refuse at once
	}
	var sources []lambda.Source
	for _, s := range o.sources {
		src, err := lambda.NewSource(s.name, s.args, lambda.SourceOptions{
			Log:         log.With("source", s.name),
			Registerer:  reg,
			Function:    fc,
			Stdin:       e.stdin,
			Stdout:      e.stdout,
			Concurrency: o.concurrency,
		})
		if err != nil {
			return usageError(err)
		}
		sources = append(sources, src)
	}
	log.Info("starting", "function", fc.Name, "command", o.command, "concurrency", o.concurrency, "timeout", fc.Timeout.String())
	return lambda.Serve(ctx, lambda.ServeConfig{
		Runtime: lambda.Config{
			Command:      o.command,
			Function:     fc,
			Concurrency:  o.concurrency,
			Prewarm:      o.prewarm,
			ThrottleWait: throttle,
			InitTimeout:  o.initTimeout,
		},
		Sources:  sources,
		Metrics:  o.metrics,
		Grace:    o.grace,
		Log:      log,
		Registry: reg,
	})
}

func newLambdaInvokeCmd(e *env) *cobra.Command {
	var eventFile, function, level string
	var timeout time.Duration
	var memory int
	cmd := &cobra.Command{
		Use:   "invoke [--event FILE] -- COMMAND [ARGS...]",
		Short: "Run one invocation of a function locally: its response on stdout, its logs and errors on stderr",
		Long: `invoke starts the function's process behind the Lambda Runtime API, as serve
does, runs one invocation with the event from --event (a file, "-" for stdin,
or {} when not given) and stops. The response goes to stdout; the function's
own output and, if it failed, its error ({"errorType","errorMessage",
"stackTrace"}) go to stderr, and the exit status is 1.`,
		Example: `  cutover lambda invoke --event events/order.json -- ./bootstrap
  echo '{"orderId":"o-1"}' | cutover lambda invoke --event - -- /lambda-entrypoint.sh app.handler`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 0 {
				return usageError(errors.New(`put the function's command after "--": cutover lambda invoke --event FILE -- COMMAND`))
			}
			payload := []byte("{}")
			if eventFile != "" {
				var err error
				if eventFile == "-" {
					payload, err = io.ReadAll(e.stdin)
				} else {
					payload, err = os.ReadFile(eventFile)
				}
				if err != nil {
					return usageError(fmt.Errorf("--event: %w", err))
				}
				if !json.Valid(payload) {
					return usageError(fmt.Errorf("--event %s is not JSON: a Lambda event is a JSON document", eventFile))
				}
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return usageError(fmt.Errorf("--log-level: %w", err))
			}
			if function == "" {
				function = os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
			}
			if timeout == 0 {
				if v := os.Getenv("AWS_LAMBDA_FUNCTION_TIMEOUT"); v != "" {
					d, err := parseSeconds(v)
					if err != nil {
						return usageError(fmt.Errorf("AWS_LAMBDA_FUNCTION_TIMEOUT: %v", err))
					}
					timeout = d
				}
			}
			// The function's output, the runtime's records and the
			// error share stderr.
			var stderr io.Writer = e.stderr
			if _, ok := stderr.(*os.File); !ok {
				stderr = &lambda.SyncWriter{W: stderr}
			}
			rt, err := lambda.New(lambda.Config{
				Command:      args,
				Function:     lambda.FunctionConfig{Name: function, MemoryMB: memory, Timeout: timeout, Region: os.Getenv("AWS_REGION"), Handler: os.Getenv("_HANDLER"), Version: os.Getenv("AWS_LAMBDA_FUNCTION_VERSION")},
				Output:       stderr,
				Log:          slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})),
				ThrottleWait: -1,
			})
			if err != nil {
				return usageError(err)
			}
			defer rt.Close()
			type result struct {
				resp lambda.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				r, err := rt.Invoke(context.WithoutCancel(cmd.Context()), lambda.Invocation{Payload: payload})
				done <- result{r, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-cmd.Context().Done():
				_ = rt.Close()
				return cmd.Context().Err()
			}
			if r.err != nil {
				return r.err
			}
			if r.resp.Err != nil {
				fmt.Fprintf(stderr, "%s\n", r.resp.Err.JSON())
				return &silentError{code: ExitWarnings}
			}
			_, err = e.stdout.Write(append(r.resp.Payload, '\n'))
			return err
		},
	}
	cmd.Flags().StringVar(&eventFile, "event", "", `the event: a JSON file, or "-" for stdin (default {})`)
	cmd.Flags().StringVar(&function, "function-name", "", "AWS_LAMBDA_FUNCTION_NAME (default $AWS_LAMBDA_FUNCTION_NAME)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "invocation timeout (default $AWS_LAMBDA_FUNCTION_TIMEOUT, else 3s)")
	cmd.Flags().IntVar(&memory, "memory", 0, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default 128)")
	cmd.Flags().StringVar(&level, "log-level", "error", "level of cutover's own records on stderr (info shows each invocation)")
	return cmd
}

// lambdaNewSource builds one source from its flags with nothing around
// it, to check them.
func lambdaNewSource(s sourceArgs) (lambda.Source, error) {
	return lambda.NewSource(s.name, s.args, lambda.SourceOptions{Function: lambda.FunctionConfig{Name: "check", Region: "eu-west-1"}})
}
