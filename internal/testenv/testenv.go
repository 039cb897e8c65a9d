// Package testenv starts a real kube-apiserver and etcd for tests, with the
// CRDs cutover renders against (Gateway API, KEDA, External Secrets, Argo
// CD) installed and established.
//
// The binaries and CRDs come from hack/deps.sh, which prints the directory
// that holds them as CUTOVER_TEST_ASSETS. Without them a test skips and
// says what to run; under CI (CI set, or CUTOVER_REQUIRE_ASSETS=1, which
// hack/test.sh sets) it fails instead, so a broken CI setup never passes as
// a run of skipped tests.
//
// Starting an apiserver takes seconds, so a test package shares one: call
// Main from TestMain and every Start in the package returns the same Env.
// Tests therefore work in namespaces of their own, or use dry-run.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Env is a running kube-apiserver with the CRDs installed. Every field is
// set by Start.
type Env struct {
	// Config reaches the apiserver as an admin (system:masters).
	Config *rest.Config
	// Client is a controller-runtime client over Scheme.
	Client client.Client
	// Dynamic reaches any resource, including the CRDs' kinds.
	Dynamic dynamic.Interface
	// Mapper maps kinds to resources; it rediscovers on a miss, so kinds
	// of CRDs installed later are found.
	Mapper meta.RESTMapper
	// Scheme knows the built-in kinds and apiextensions.
	Scheme *runtime.Scheme
	// Assets is the directory the binaries and CRDs came from.
	Assets string
	// CRDs are the names of the CRDs installed at start.
	CRDs []string

	env     *envtest.Environment
	etcdDir string
	out     *tailBuffer
}

// EnvAssets names the directory hack/deps.sh prints.
const EnvAssets = "CUTOVER_TEST_ASSETS"

// EnvRequire makes missing assets a failure instead of a skip.
const EnvRequire = "CUTOVER_REQUIRE_ASSETS"

var (
	shared struct {
		sync.Mutex
		inMain  bool
		started bool
		env     *Env
		err     error
		skip    string
	}
)

// Main runs a test package whose tests call Start and stops the shared
// apiserver afterwards. Use it as the whole TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	shared.Lock()
	shared.inMain = true
	shared.Unlock()
	// An interrupted run (Ctrl-C, a CI runner cancelling the job) would
	// otherwise leave etcd and kube-apiserver running.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		shared.Lock()
		if shared.env != nil {
			_ = shared.env.stop()
		}
		os.Exit(130)
	}()
	code := m.Run()
	signal.Stop(sig)
	shared.Lock()
	if shared.env != nil {
		if err := shared.env.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stopping the apiserver:", err)
			if code == 0 {
				code = 1
			}
		}
		shared.env = nil
	}
	shared.Unlock()
	os.Exit(code)
}

// Start returns a running apiserver. In a package whose TestMain calls
// Main, the first call starts it and later calls share it; otherwise each
// call starts one that stops when the test ends. Start skips the test when
// the assets are missing (fails under CI) and fails it when the apiserver
// does not come up.
func Start(t testing.TB) *Env {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.inMain {
		assets, missing := findAssets()
		if missing != "" {
			skipOrFail(t, missing)
		}
		e, err := start(assets)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(func() {
			if err := e.stop(); err != nil {
				t.Errorf("testenv: stopping the apiserver: %v", err)
			}
		})
		return e
	}
	if !shared.started {
		shared.started = true
		assets, missing := findAssets()
		if missing != "" {
			shared.skip = missing
		} else {
			shared.env, shared.err = start(assets)
		}
	}
	if shared.skip != "" {
		skipOrFail(t, shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("testenv: %v", shared.err)
	}
	return shared.env
}

// Required reports whether missing assets fail tests instead of skipping
// them: under CI, or when CUTOVER_REQUIRE_ASSETS=1.
func Required() bool {
	if v := os.Getenv(EnvRequire); v != "" && v != "0" && v != "false" {
		return true
	}
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

func skipOrFail(t testing.TB, missing string) {
	t.Helper()
	msg := "kube-apiserver test assets missing: " + missing + "; run hack/deps.sh and export its last line (CUTOVER_TEST_ASSETS=...)"
	if Required() {
		t.Fatalf("%s (assets are required under CI / %s=1)", msg, EnvRequire)
	}
	t.Skip(msg)
}

// findAssets returns the assets directory, or what is missing. Without
// CUTOVER_TEST_ASSETS it also looks where hack/deps.sh puts them by
// default, so a developer who ran it once need not export anything.
func findAssets() (dir, missing string) {
	dir = os.Getenv(EnvAssets)
	if dir == "" {
		def := defaultAssets()
		if def == "" || !complete(def) {
			return "", EnvAssets + " not set"
		}
		dir = def
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		p := filepath.Join(dir, bin)
		if os.Getenv("KUBEBUILDER_ASSETS") != "" {
			p = filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), bin)
		}
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", p + " is not an executable"
		}
	}
	crds, _ := filepath.Glob(filepath.Join(dir, "crds", "*.yaml"))
	if len(crds) == 0 {
		return "", "no CRDs in " + filepath.Join(dir, "crds")
	}
	return dir, ""
}

// defaultAssets mirrors the cache directory hack/deps.sh uses.
func defaultAssets() string {
	if c := os.Getenv("CUTOVER_CACHE"); c != "" {
		return filepath.Join(c, "assets")
	}
	if c := os.Getenv("XDG_CACHE_HOME"); c != "" {
		return filepath.Join(c, "cutover", "assets")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "cutover", "assets")
	}
	return ""
}

func complete(dir string) bool {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return false
		}
	}
	crds, _ := filepath.Glob(filepath.Join(dir, "crds", "*.yaml"))
	return len(crds) > 0
}

// startTimeout is generous: the machine running tests is shared, and the
// apiserver's first start (with its post-start hooks) is CPU bound.
const startTimeout = 3 * time.Minute

func start(assets string) (*Env, error) {
	// controller-runtime complains on stderr when no logger is set; its
	// errors reach us as returned errors anyway.
	ctrllog.SetLogger(logr.Discard())

	out := newTailBuffer(64 << 10)
	e := &Env{Assets: assets, out: out}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{filepath.Join(assets, "crds")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  time.Minute,
	}
	env.CRDInstallOptions.MaxTime = 2 * time.Minute
	env.ControlPlane.Etcd = &envtest.Etcd{Out: out, Err: out}
	env.ControlPlane.APIServer = &envtest.APIServer{Out: out, Err: out}
	// etcd fsyncs every write; Debian's etcd 3.4 lacks --unsafe-no-fsync,
	// which envtest adds only when the binary knows it. A data directory
	// in memory makes those fsyncs free.
	if dir, err := os.MkdirTemp("/dev/shm", "cutover-etcd-"); err == nil {
		e.etcdDir = dir
		env.ControlPlane.Etcd.DataDir = dir
	}
	e.env = env

	cfg, err := env.Start()
	if err != nil {
		_ = e.stop()
		return nil, fmt.Errorf("cannot start kube-apiserver and etcd from %s: %w\n--- control plane output (tail) ---\n%s", assets, err, out.String())
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	e.Config = cfg

	e.Scheme = runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(e.Scheme); err != nil {
		_ = e.stop()
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(e.Scheme); err != nil {
		_ = e.stop()
		return nil, err
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		_ = e.stop()
		return nil, err
	}
	if e.Mapper, err = apiutil.NewDynamicRESTMapper(cfg, httpClient); err != nil {
		_ = e.stop()
		return nil, err
	}
	if e.Client, err = client.New(cfg, client.Options{Scheme: e.Scheme, Mapper: e.Mapper, HTTPClient: httpClient}); err != nil {
		_ = e.stop()
		return nil, err
	}
	if e.Dynamic, err = dynamic.NewForConfigAndClient(cfg, httpClient); err != nil {
		_ = e.stop()
		return nil, err
	}
	if err := e.waitEstablished(context.Background()); err != nil {
		_ = e.stop()
		return nil, err
	}
	return e, nil
}

// waitEstablished waits until every installed CRD has the Established
// condition: envtest waits for discovery, but a CRD is only served for
// writes once established, and names may still be in conflict.
func (e *Env) waitEstablished(ctx context.Context) error {
	for _, crd := range e.env.CRDs {
		e.CRDs = append(e.CRDs, crd.Name)
	}
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, name := range e.CRDs {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := e.Client.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
				pending = append(pending, name+" ("+err.Error()+")")
				continue
			}
			established := false
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.NamesAccepted && c.Status == apiextensionsv1.ConditionFalse {
					return false, fmt.Errorf("CRD %s: names not accepted: %s", name, c.Message)
				}
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					established = true
				}
			}
			if !established {
				pending = append(pending, name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("CRDs not established: %s: %w", strings.Join(pending, ", "), err)
	}
	return nil
}

func (e *Env) stop() error {
	var err error
	if e.env != nil {
		err = e.env.Stop()
	}
	if e.etcdDir != "" {
		err = errors.Join(err, os.RemoveAll(e.etcdDir))
	}
	return err
}

// Namespace creates the namespace (for real, not dry-run) unless it
// exists, and returns its name.
func (e *Env) Namespace(t testing.TB, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("testenv: cannot create namespace %s: %v", name, err)
	}
	return name
}

// Output returns the tail of the apiserver's and etcd's output, for a
// test that wants to show it on failure.
func (e *Env) Output() string { return e.out.String() }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
