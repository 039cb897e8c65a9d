package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/cutoverhq/cutover/internal/awsstub"
	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
	"github.com/cutoverhq/cutover/metrics/prometheus/promtest"
	"github.com/cutoverhq/cutover/source"
)

// Tests of the Kubernetes checkpoint against a real kube-apiserver and
// etcd (internal/testenv), never a fake: KubeStore's conditional writes,
// and replicas electing one reader with a real Lease. The streams are
// internal/kinesisstub's, so the replica tests are protocol tests.

type kubeFixture struct {
	env  *testenv.Env
	kube kubernetes.Interface // as an admin, for the test's own looks
	ns   string
}

// fixtures numbers the namespaces: the apiserver outlives a test, and
// -count=N runs each test N times against it.
var fixtures atomic.Int32

func newKubeFixture(t *testing.T, ns string) *kubeFixture {
	t.Helper()
	e := testenv.Start(t)
	kube, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &kubeFixture{env: e, kube: kube, ns: e.Namespace(t, fmt.Sprintf("%s-%d", ns, fixtures.Add(1)))}
}

// wait receives from ch or fails the test after d.
func wait[T any](t *testing.T, what string, d time.Duration, ch <-chan T) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// client is a client of its own, as each replica has; cut, when not nil,
// fails every request once set: the replica is partitioned or dead as far
// as the API server can tell.
func (k *kubeFixture) client(t *testing.T, cut *atomic.Bool) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(k.env.Config)
	if cut != nil {
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return cutTransport{rt, cut} }
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type cutTransport struct {
	rt  http.RoundTripper
	cut *atomic.Bool
}

func (c cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("test: the replica is cut off from the API server")
	}
	return c.rt.RoundTrip(r)
}

// kubeconfig writes a kubeconfig reaching the apiserver as an admin and
// points $KUBECONFIG at it, as a developer's shell would.
func (k *kubeFixture) kubeconfig(t *testing.T) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: k.env.Config.Host, CertificateAuthorityData: k.env.Config.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: k.env.Config.CertData, ClientKeyData: k.env.Config.KeyData}
	kc.Contexts["admin"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kc.CurrentContext = "admin"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", p)
}

// checkpoint reads the ConfigMap's checkpoint as the test's admin.
func (k *kubeFixture) checkpoint(t *testing.T, name string) *Checkpoint {
	t.Helper()
	cm, err := k.kube.CoreV1().ConfigMaps(k.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCheckpoint(name, []byte(cm.Data[CheckpointKey]))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// holder is the Lease's holder identity; "" when free or missing.
func (k *kubeFixture) holder(t *testing.T, name string) string {
	t.Helper()
	l, err := k.kube.CoordinationV1().Leases(k.ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func testCheckpoint(arn string, seq string) *Checkpoint {
	return &Checkpoint{Version: 1, StreamARN: arn, Shards: map[string]*ShardCheckpoint{
		"shardId-000000000000": {SequenceNumber: seq, Updated: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)},
	}}
}

const testStreamARN = "arn:aws:kinesis:us-east-1:123456789012:stream/card-authorisations"

func TestKubeStore(t *testing.T) {
	k := newKubeFixture(t, "streams-kubestore")
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		a := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "round-trip", "replica-a")
		if c, err := a.Load(ctx); c != nil || err != nil || a.ResourceVersion() != "" {
			t.Fatalf("Load before any save = %v, %v, resourceVersion %q; want nil, nil, \"\"", c, err, a.ResourceVersion())
		}
		want := testCheckpoint(testStreamARN, "49590338271490256608559692538361571095921575989136588802")
		if err := a.Save(ctx, want); err != nil {
			t.Fatal(err)
		}
		first := a.ResourceVersion()
		want.Shards["shardId-000000000000"].SequenceNumber = "49590338271490256608559692538361571095921575989136588803"
		if err := a.Save(ctx, want); err != nil {
			t.Fatal(err)
		}
		if a.ResourceVersion() == first || a.ResourceVersion() == "" {
			t.Errorf("resourceVersion %q after the second save, %q after the first", a.ResourceVersion(), first)
		}
		b := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "round-trip", "replica-b")
		got, err := b.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.StreamARN != testStreamARN || got.Shards["shardId-000000000000"].SequenceNumber != want.Shards["shardId-000000000000"].SequenceNumber ||
			!got.Shards["shardId-000000000000"].Updated.Equal(want.Shards["shardId-000000000000"].Updated) {
			t.Errorf("loaded %+v, want %+v", got.Shards["shardId-000000000000"], want.Shards["shardId-000000000000"])
		}
		cm, err := k.kube.CoreV1().ConfigMaps(k.ns).Get(ctx, "round-trip", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Annotations[WriterAnnotation] != "replica-a" || cm.Labels["app.kubernetes.io/managed-by"] != "cutover" || b.ResourceVersion() != cm.ResourceVersion {
			t.Errorf("configmap annotations %v labels %v resourceVersion %s (store read %s)", cm.Annotations, cm.Labels, cm.ResourceVersion, b.ResourceVersion())
		}
	})

	t.Run("StaleResourceVersionIsTaken", func(t *testing.T) {
		a := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "stale", "replica-a")
		b := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "stale", "replica-b")
		if _, err := a.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Save(ctx, testCheckpoint(testStreamARN, "100")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Save(ctx, testCheckpoint(testStreamARN, "200")); err != nil {
			t.Fatal(err)
		}
		// a's resourceVersion is the one before b's write.
		err := a.Save(ctx, testCheckpoint(testStreamARN, "150"))
		if !errors.Is(err, ErrCheckpointTaken) || !strings.Contains(err.Error(), "configmap "+k.ns+"/stale") || !strings.Contains(err.Error(), `"replica-b"`) {
			t.Fatalf("save on a stale resourceVersion: %v, want ErrCheckpointTaken naming the configmap and replica-b", err)
		}
		// Fenced for good: no later save goes through, even one that
		// would not conflict.
		if err := a.Save(ctx, testCheckpoint(testStreamARN, "150")); !errors.Is(err, ErrCheckpointTaken) {
			t.Errorf("second save after the fence: %v", err)
		}
		if got := k.checkpoint(t, "stale").Shards["shardId-000000000000"].SequenceNumber; got != "200" {
			t.Errorf("stored sequence number %s, want b's 200", got)
		}
	})

	t.Run("CreateRaceIsTaken", func(t *testing.T) {
		a := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "create-race", "replica-a")
		b := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "create-race", "replica-b")
		for _, s := range []*KubeStore{a, b} {
			if c, err := s.Load(ctx); c != nil || err != nil {
				t.Fatal(c, err)
			}
		}
		if err := b.Save(ctx, testCheckpoint(testStreamARN, "1")); err != nil {
			t.Fatal(err)
		}
		if err := a.Save(ctx, testCheckpoint(testStreamARN, "2")); !errors.Is(err, ErrCheckpointTaken) {
			t.Errorf("create after another replica's: %v", err)
		}
	})

	// An update whose answer was lost (a timeout) but which was applied
	// leaves the store behind its own write; the next save finds itself
	// the last writer and goes on instead of stopping.
	t.Run("OwnLostWriteIsNotAConflict", func(t *testing.T) {
		a := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "lost-answer", "replica-a")
		if _, err := a.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Save(ctx, testCheckpoint(testStreamARN, "1")); err != nil {
			t.Fatal(err)
		}
		// The lost write: same identity, a store instance of its own.
		lost := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "lost-answer", "replica-a")
		if _, err := lost.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := lost.Save(ctx, testCheckpoint(testStreamARN, "2")); err != nil {
			t.Fatal(err)
		}
		if err := a.Save(ctx, testCheckpoint(testStreamARN, "3")); err != nil {
			t.Fatalf("save after its own lost write: %v", err)
		}
		if got := k.checkpoint(t, "lost-answer").Shards["shardId-000000000000"].SequenceNumber; got != "3" {
			t.Errorf("stored %s, want 3", got)
		}
	})

	t.Run("DeletedIsTaken", func(t *testing.T) {
		a := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "deleted", "replica-a")
		if _, err := a.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Save(ctx, testCheckpoint(testStreamARN, "1")); err != nil {
			t.Fatal(err)
		}
		if err := k.kube.CoreV1().ConfigMaps(k.ns).Delete(ctx, "deleted", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := a.Save(ctx, testCheckpoint(testStreamARN, "2")); !errors.Is(err, ErrCheckpointTaken) || !strings.Contains(err.Error(), "deleted") {
			t.Errorf("save after the configmap was deleted: %v", err)
		}
	})

	// A ConfigMap made beforehand (by a chart, by hand) with other keys
	// and no checkpoint yet: Load finds none, Save keeps the rest.
	t.Run("PrecreatedConfigMapKeepsItsKeys", func(t *testing.T) {
		_, err := k.kube.CoreV1().ConfigMaps(k.ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "precreated", Namespace: k.ns, Labels: map[string]string{"app.kubernetes.io/name": "fraud-score"}},
			Data:       map[string]string{"README": "checkpoint of fraud-score's Kinesis trigger"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a := NewKubeStore(k.client(t, nil).CoreV1(), k.ns, "precreated", "replica-a")
		if c, err := a.Load(ctx); c != nil || err != nil {
			t.Fatalf("Load of a configmap without %s = %v, %v", CheckpointKey, c, err)
		}
		if err := a.Save(ctx, testCheckpoint(testStreamARN, "7")); err != nil {
			t.Fatal(err)
		}
		cm, _ := k.kube.CoreV1().ConfigMaps(k.ns).Get(ctx, "precreated", metav1.GetOptions{})
		if cm.Data["README"] == "" || cm.Labels["app.kubernetes.io/name"] != "fraud-score" || !strings.Contains(cm.Data[CheckpointKey], `"sequenceNumber": "7"`) {
			t.Errorf("configmap after save: labels %v data %v", cm.Labels, cm.Data)
		}
	})
}

// A hand-edited checkpoint that is not one is refused with the
// ConfigMap, the key, the line and the field named, at Load and when a
// source starts on it; the source never guesses where to resume.
func TestKubeStoreBadCheckpointNamesTheConfigMap(t *testing.T) {
	k := newKubeFixture(t, "streams-bad-checkpoint")
	ctx := context.Background()
	bad := `{
  "version": 1,
  "streamArn": "` + testStreamARN + `",
  "shards": {
    "shardId-000000000000": {"sequenceNumber": "4959O338", "updated": "2026-11-22T10:00:00Z"}
  }
}
`
	if _, err := k.kube.CoreV1().ConfigMaps(k.ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud-score-card-authorisations", Namespace: k.ns},
		Data:       map[string]string{CheckpointKey: bad},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "configmap " + k.ns + "/fraud-score-card-authorisations checkpoint.json:5: shards.shardId-000000000000.sequenceNumber: " +
		`"4959O338" is not a sequence number`
	_, err := NewKubeStore(k.kube.CoreV1(), k.ns, "fraud-score-card-authorisations", "").Load(ctx)
	var ie *source.InputError
	if !errors.As(err, &ie) || err.Error() != want {
		t.Errorf("Load = %v\nwant   %s", err, want)
	}

	// A source elected on it stops with the same error and releases the
	// Lease.
	f := newFixture(t)
	arn := f.stub.CreateStream("card-authorisations", 1)
	src := kubeSource(t, Kinesis, k.kube, "--stream-arn", arn, "--endpoint-url", f.stub.URL,
		"--checkpoint-configmap", "fraud-score-card-authorisations", "--checkpoint-namespace", k.ns)
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = src.Run(runCtx, newRecorder(Kinesis, nil))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Run = %v, want it to hold %q", err, want)
	}
	if h := k.holder(t, "fraud-score-card-authorisations"); h != "" {
		t.Errorf("the Lease is still held by %q after the source stopped", h)
	}
}

// kubeSource builds a source from serve's flags, as fromFlags does, with
// the Kubernetes client kube (nil: $KUBECONFIG's).
func kubeSource(t *testing.T, kind string, kube kubernetes.Interface, args ...string) *Source {
	t.Helper()
	s := fromFlags(t, kind, args...).(*Source)
	if kube != nil {
		s.cfg.Kube = kube
	}
	return s
}

// replica is one pod's worth: a real function under its own runtime, and
// the source that feeds it.
type replica struct {
	src  *Source
	gate *gate
	log  string // the function's log of handled records
	stop func() error
	// done is closed when Run has returned, with its error in err.
	done chan struct{}
	err  error
}

// gate sits between a replica's source and its runtime: it can hold an
// invocation before it reaches the function, play the process's death
// after it, and notes when invocations start and end.
type gate struct {
	inv lambda.Invoker

	mu       sync.Mutex
	holdAt   int           // the invocation to hold (1 is the first); 0: none
	release  chan struct{} // the held invocation waits for it
	held     chan struct{} // told when it is held
	dieAfter bool          // the held invocation is the process's last
	dead     bool
	n        int       // invocations so far
	first    time.Time // start of the first invocation
	last     time.Time // end of the last one
}

func newGate(inv lambda.Invoker) *gate {
	return &gate{inv: inv, release: make(chan struct{}), held: make(chan struct{}, 1)}
}

// hold holds invocation n (counted from this replica's first) until
// release is closed; with die the replica's process dies after it.
func (g *gate) hold(n int, die bool) (held <-chan struct{}, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holdAt, g.dieAfter = n, die
	return g.held, g.release
}

func (g *gate) Invoke(ctx context.Context, inv lambda.Invocation) (lambda.Response, error) {
	g.mu.Lock()
	if g.dead {
		g.mu.Unlock()
		return lambda.Response{}, lambda.ErrClosed
	}
	if g.first.IsZero() {
		g.first = time.Now()
	}
	g.n++
	hold := g.n == g.holdAt
	g.mu.Unlock()
	if hold {
		g.held <- struct{}{}
		<-g.release
	}
	resp, err := g.inv.Invoke(ctx, inv)
	g.mu.Lock()
	g.last = time.Now()
	if hold && g.dieAfter {
		g.dead = true
	}
	g.mu.Unlock()
	return resp, err
}

func (g *gate) times() (first, last time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first, g.last
}

func newReplica(t *testing.T, src *Source) *replica {
	t.Helper()
	rt, log := underRuntime(t, 1)
	return &replica{src: src, gate: newGate(rt), log: log, done: make(chan struct{})}
}

// start runs the replica's source until stop (SIGTERM).
func (r *replica) start(t *testing.T) *replica {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r.err = r.src.Run(ctx, r.gate)
		close(r.done)
	}()
	r.stop = func() error {
		cancel()
		select {
		case <-r.done:
			return r.err
		case <-time.After(30 * time.Second):
			return errors.New("Run did not return 30 s after its context ended")
		}
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// handled is what the replica's function logged, as items.
func (r *replica) handled(t *testing.T) []item {
	var items []item
	for _, l := range logged(t, r.log) {
		p := strings.SplitN(l, " ", 3)
		items = append(items, item{shard: p[0], seq: p[1], data: p[2]})
	}
	return items
}

func datas(items []item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.data)
	}
	return out
}

// Two replicas on one stream, the Lease's production timings: only the
// holder invokes; SIGTERM'd while a batch is in flight, the holder
// finishes and checkpoints it, then releases the Lease, and the standby
// resumes after that checkpoint. Every record is handled exactly once,
// by one replica, in order per key.
func TestProtocolKubeGracefulHandoverHandlesEveryRecordOnce(t *testing.T) {
	k := newKubeFixture(t, "streams-handover")
	k.kubeconfig(t) // the replicas build their clients from it, as outside a pod
	f := newFixture(t)
	arn := f.stub.CreateStream("card-authorisations", 2)
	var want []string
	for i := range 4 {
		key := fmt.Sprintf("card-%d", i)
		f.put(t, "card-authorisations", key, keyed(key, 0, 10)...)
		want = append(want, keyed(key, 0, 10)...)
	}
	const name = "fraud-score-card-authorisations"
	args := []string{"--stream-arn", arn, "--endpoint-url", f.stub.URL, "--batch-size", "5",
		"--checkpoint-configmap", name, "--checkpoint-namespace", k.ns}

	a := newReplica(t, kubeSource(t, Kinesis, nil, args...))
	// a's first invocation after the first 40 records is held.
	held, release := a.gate.hold(9, false)
	a.start(t)
	lambdatest.WaitFor(t, "replica a to hold the Lease", 30*time.Second, func() bool { return k.holder(t, name) == a.src.cfg.Identity })
	b := newReplica(t, kubeSource(t, Kinesis, nil, args...)).start(t)
	lambdatest.WaitFor(t, "replica a to handle the first 40", 30*time.Second, func() bool { return len(logged(t, a.log)) == 40 })
	if n := len(logged(t, b.log)); n != 0 {
		t.Fatalf("the standby handled %d records while the other replica held the Lease", n)
	}

	// SIGTERM while a batch is in flight.
	f.put(t, "card-authorisations", "card-9", "card-9:000")
	want = append(want, "card-9:000")
	wait(t, "a's batch in flight", 30*time.Second, held)
	stopped := make(chan error, 1)
	go func() { stopped <- a.stop() }()
	// While a finishes its batch it keeps the Lease: b stays a standby.
	time.Sleep(500 * time.Millisecond)
	if h := k.holder(t, name); h != a.src.cfg.Identity {
		t.Errorf("the Lease went to %q before a finished its batch", h)
	}
	close(release)
	var stopErr error
	select {
	case stopErr = <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("a SIGTERM'd replica did not stop within 30 s")
	}
	if stopErr != nil {
		t.Fatalf("a SIGTERM'd replica returns %v, want nil", stopErr)
	}
	aStopped := time.Now()
	cp := k.checkpoint(t, name)
	for _, sh := range f.stub.Shards("card-authorisations") {
		if got, last := cp.Shards[sh.ID].SequenceNumber, sh.Records[len(sh.Records)-1]; got != last {
			t.Errorf("%s checkpointed at %s, want its last record %s: the batch in flight was not checkpointed before the handover", sh.ID, got, last)
		}
	}
	if h := k.holder(t, name); h == a.src.cfg.Identity {
		t.Errorf("a still holds the Lease after it stopped")
	}

	// b takes over, from the checkpoint.
	lambdatest.WaitFor(t, "replica b to hold the Lease", 30*time.Second, func() bool { return k.holder(t, name) == b.src.cfg.Identity })
	handover := time.Since(aStopped)
	f.put(t, "card-authorisations", "card-7", keyed("card-7", 0, 10)...)
	want = append(want, keyed("card-7", 0, 10)...)
	lambdatest.WaitFor(t, "replica b to handle the new records", 30*time.Second, func() bool { return len(logged(t, b.log)) >= 10 })
	time.Sleep(300 * time.Millisecond) // anything b would read twice shows now
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("graceful handover: the standby held the Lease %v after the leader released it (retry period 2s, jittered up to 4.4s)", handover.Round(time.Millisecond))

	all := append(a.handled(t), b.handled(t)...)
	exactlyOnce(t, all, want)
	inOrder(t, all)
	if got := datas(b.handled(t)); strings.Join(got, ",") != strings.Join(keyed("card-7", 0, 10), ",") {
		t.Errorf("the standby handled %v, want only what came after the handover", got)
	}
	if bFirst, _ := b.gate.times(); bFirst.Before(aStopped) {
		t.Errorf("the standby invoked at %v, before the leader stopped at %v", bFirst, aStopped)
	}
}

// The holder dies just after its function handled a batch: no more
// renewals, and that batch's checkpoint write never reaches the API
// server. The standby takes over once the Lease expires and resumes after
// the last checkpoint written: every record is handled, and only that one
// batch twice (at least once, as with Lambda). The cut-off replica stops
// by itself with ErrLeaseLost before the standby invokes anything.
func TestProtocolKubeHardKillResumesAfterLastCheckpoint(t *testing.T) {
	k := newKubeFixture(t, "streams-hard-kill")
	f := newFixture(t)
	arn := f.stub.CreateStream("ledger", 1)
	f.put(t, "ledger", "acct", keyed("acct", 0, 30)...)
	const name = "settlement-ledger"
	args := []string{"--stream-arn", arn, "--endpoint-url", f.stub.URL, "--batch-size", "5",
		"--checkpoint-configmap", name, "--checkpoint-namespace", k.ns,
		"--lease-duration", "4s", "--lease-renew-deadline", "2s", "--lease-retry-period", "0.5"}

	var cut atomic.Bool
	a := newReplica(t, kubeSource(t, Kinesis, k.client(t, &cut), args...))
	held, release := a.gate.hold(3, true) // acct:010–014, a's last batch
	a.start(t)
	lambdatest.WaitFor(t, "replica a to hold the Lease", 30*time.Second, func() bool { return k.holder(t, name) == a.src.cfg.Identity })
	b := newReplica(t, kubeSource(t, Kinesis, k.client(t, nil), args...)).start(t)
	wait(t, "a's third batch", 30*time.Second, held)
	written := k.checkpoint(t, name).Shards["shardId-000000000000"].SequenceNumber
	if want := f.stub.Shards("ledger")[0].Records[9]; written != want {
		t.Fatalf("checkpoint before the kill %s, want acct:009's %s", written, want)
	}
	cut.Store(true)
	killed := time.Now()
	close(release)

	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the cut-off replica did not stop by itself")
	}
	aStopped := time.Now()
	if !errors.Is(a.err, ErrLeaseLost) {
		t.Errorf("the cut-off replica's Run = %v, want ErrLeaseLost", a.err)
	}
	lambdatest.WaitFor(t, "replica b to handle the rest", 30*time.Second, func() bool { return len(logged(t, b.log)) >= 20 })
	time.Sleep(300 * time.Millisecond)
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	bFirst, _ := b.gate.times()
	_, aLast := a.gate.times()
	t.Logf("hard kill: the cut-off leader stopped itself %v after the cut; the standby invoked %v after it (lease 4s, renew deadline 2s, retry 0.5s)",
		aStopped.Sub(killed).Round(time.Millisecond), bFirst.Sub(killed).Round(time.Millisecond))

	if got := datas(a.handled(t)); strings.Join(got, ",") != strings.Join(keyed("acct", 0, 15), ",") {
		t.Errorf("the killed replica handled %v, want acct:000–014", got)
	}
	if got := datas(b.handled(t)); strings.Join(got, ",") != strings.Join(keyed("acct", 10, 30), ",") {
		t.Errorf("the standby handled %v, want acct:010–029: from the last checkpoint written on", got)
	}
	c := counts(append(a.handled(t), b.handled(t)...))
	for _, d := range keyed("acct", 0, 30) {
		want := 1
		if d >= "acct:010" && d <= "acct:014" {
			want = 2 // the batch whose checkpoint was lost
		}
		if c[d] != want {
			t.Errorf("%s handled %d times, want %d", d, c[d], want)
		}
	}
	if !aLast.Before(bFirst) || !aStopped.Before(bFirst) {
		t.Errorf("two readers at once: a invoked until %v and stopped at %v, b invoked from %v", aLast, aStopped, bFirst)
	}
	if got, want := k.checkpoint(t, name).Shards["shardId-000000000000"].SequenceNumber, f.stub.Shards("ledger")[0].Records[29]; got != want {
		t.Errorf("final checkpoint %s, want the last record's %s", got, want)
	}
}

// Another writer changes the ConfigMap under the reader (an operator's
// edit, a replica that took over while this one was stalled): the
// reader's next checkpoint write is fenced and it stops at once with
// ErrCheckpointTaken, invoking nothing after the fenced batch.
func TestProtocolKubeFencedSaveStopsTheSource(t *testing.T) {
	k := newKubeFixture(t, "streams-fenced")
	f := newFixture(t)
	arn := f.stub.CreateStream("ledger", 1)
	f.put(t, "ledger", "acct", keyed("acct", 0, 5)...)
	const name = "ledger-reader"
	awsstub.FakeEnv(t)
	rec := newRecorder(Kinesis, nil)
	src := kubeSource(t, Kinesis, k.client(t, nil), "--stream-arn", arn, "--endpoint-url", f.stub.URL, "--batch-size", "5",
		"--checkpoint-configmap", name, "--checkpoint-namespace", k.ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	lambdatest.WaitFor(t, "the first batch", 30*time.Second, func() bool { return len(rec.handled()) == 5 })
	lambdatest.WaitFor(t, "its checkpoint", 10*time.Second, func() bool {
		cm, err := k.kube.CoreV1().ConfigMaps(k.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && strings.Contains(cm.Data[CheckpointKey], f.stub.Shards("ledger")[0].Records[4])
	})

	cm, err := k.kube.CoreV1().ConfigMaps(k.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Annotations[WriterAnnotation] = "someone-else"
	if _, err := k.kube.CoreV1().ConfigMaps(k.ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.put(t, "ledger", "acct", keyed("acct", 5, 20)...)
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the source did not stop after its save was fenced")
	}
	if !errors.Is(err, ErrCheckpointTaken) || !strings.Contains(err.Error(), `"someone-else"`) {
		t.Errorf("Run = %v, want ErrCheckpointTaken naming the other writer", err)
	}
	if got := datas(rec.handled()); strings.Join(got, ",") != strings.Join(keyed("acct", 0, 10), ",") {
		t.Errorf("handled %v, want acct:000–009: the fenced batch and nothing after it", got)
	}
	if h := k.holder(t, name); h != "" {
		t.Errorf("the Lease is still held by %q after the source stopped", h)
	}
}

// serveProcess is `cutover lambda serve` as a converted pod runs it: its
// own process (and process group, which a container's kill takes down
// whole), the real function as its child, the Kubernetes client from
// $KUBECONFIG.
type serveProcess struct {
	cmd     *exec.Cmd
	log     string // the function's log of handled records
	metrics string // host:port of /metrics, /readyz
	stderr  *lockedBuffer
	exited  chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cutoverBinary builds cmd/cutover into the test's directory.
func cutoverBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cutover")
	cmd := exec.Command("go", "build", "-o", out, "github.com/cutoverhq/cutover/cmd/cutover")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cannot build cutover: %v", err)
	}
	return out
}

func startServe(t *testing.T, bin, fn, pod string, args ...string) *serveProcess {
	t.Helper()
	p := &serveProcess{log: filepath.Join(t.TempDir(), "handled"), metrics: promtest.FreeAddr(t), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	full := append([]string{"lambda", "serve", "--metrics", p.metrics, "--log-level", "debug", "--source", "kinesis"}, args...)
	p.cmd = exec.Command(bin, append(full, "--", fn)...)
	p.cmd.Env = append(os.Environ(), "HOSTNAME="+pod, "STREAMFN_LOG="+p.log, "AWS_ACCESS_KEY_ID=AKIDSTUB",
		"AWS_SECRET_ACCESS_KEY=stub-secret", "AWS_EC2_METADATA_DISABLED=true")
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not exit 30 s after SIGKILL", pod)
		}
		if t.Failed() {
			t.Logf("%s's stderr:\n%s", pod, p.stderr.String())
		}
	})
	return p
}

// kill is SIGKILL to the whole process group: serve and its function.
func (p *serveProcess) kill() { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }

// get fetches a path of serve's metrics address; "" when it does not
// answer.
func (p *serveProcess) get(path string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.metrics + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Two `cutover lambda serve` processes on one stream, as two pods of a
// converted Deployment: the standby is ready (its probes pass) but reads
// nothing; SIGKILL'd, the reader is replaced by the standby once the Lease
// expires, from the checkpoint; SIGTERM'd, serve exits 0 and frees the
// Lease.
func TestProtocolServeStandbyTakesOverWhenTheReaderIsKilled(t *testing.T) {
	k := newKubeFixture(t, "streams-serve")
	k.kubeconfig(t)
	f := newFixture(t)
	arn := f.stub.CreateStream("card-authorisations", 2)
	var want []string
	for i := range 4 {
		key := fmt.Sprintf("card-%d", i)
		f.put(t, "card-authorisations", key, keyed(key, 0, 5)...)
		want = append(want, keyed(key, 0, 5)...)
	}
	bin, fn := cutoverBinary(t), streamFunction(t)
	const name = "fraud-score-card-authorisations"
	args := []string{"--stream-arn", arn, "--endpoint-url", f.stub.URL, "--batch-size", "5",
		"--checkpoint-configmap", name, "--checkpoint-namespace", k.ns,
		"--lease-duration", "3", "--lease-renew-deadline", "2", "--lease-retry-period", "0.5"}
	leaderGauge := `cutover_lambda_kinesis_leader{stream="card-authorisations"} `

	a := startServe(t, bin, fn, "fraud-score-6b7f9c-a", args...)
	lambdatest.WaitFor(t, "pod a to hold the Lease", 60*time.Second, func() bool { return strings.HasPrefix(k.holder(t, name), "fraud-score-6b7f9c-a-") })
	lambdatest.WaitFor(t, "pod a to handle the first 20", 30*time.Second, func() bool { return len(logged(t, a.log)) == 20 })
	b := startServe(t, bin, fn, "fraud-score-6b7f9c-b", args...)
	lambdatest.WaitFor(t, "pod b to be ready", 30*time.Second, func() bool { code, _ := b.get("/readyz"); return code == http.StatusOK })
	if _, m := a.get("/metrics"); !strings.Contains(m, leaderGauge+"1") {
		t.Errorf("the reader's metrics lack %s1", leaderGauge)
	}
	if _, m := b.get("/metrics"); !strings.Contains(m, leaderGauge+"0") {
		t.Errorf("the standby's metrics lack %s0", leaderGauge)
	}
	// Every batch a handled is checkpointed before it dies, so nothing
	// should be handled twice.
	lambdatest.WaitFor(t, "a's last checkpoint", 10*time.Second, func() bool {
		cp := k.checkpoint(t, name)
		for _, sh := range f.stub.Shards("card-authorisations") {
			if cp.Shards[sh.ID] == nil || cp.Shards[sh.ID].SequenceNumber != sh.Records[len(sh.Records)-1] {
				return false
			}
		}
		return true
	})
	if n := len(logged(t, b.log)); n != 0 {
		t.Fatalf("the standby handled %d records", n)
	}

	a.kill()
	killed := time.Now()
	wait(t, "the killed serve to exit", 30*time.Second, a.exited)
	f.put(t, "card-authorisations", "card-7", keyed("card-7", 0, 10)...)
	want = append(want, keyed("card-7", 0, 10)...)
	lambdatest.WaitFor(t, "pod b to take the Lease over", 30*time.Second, func() bool { return strings.HasPrefix(k.holder(t, name), "fraud-score-6b7f9c-b-") })
	takeover := time.Since(killed)
	lambdatest.WaitFor(t, "pod b to handle the new records", 30*time.Second, func() bool { return len(logged(t, b.log)) >= 10 })
	if _, m := b.get("/metrics"); !strings.Contains(m, leaderGauge+"1") {
		t.Errorf("the new reader's metrics lack %s1", leaderGauge)
	}
	t.Logf("SIGKILL'd reader: the standby held the Lease %v later (lease 3s, retry 0.5s)", takeover.Round(time.Millisecond))

	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit 30 s after SIGTERM")
	}
	if code := b.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("serve exited %d after SIGTERM, want 0", code)
	}
	if h := k.holder(t, name); h != "" {
		t.Errorf("the Lease is held by %q after its holder exited", h)
	}
	var items []item
	for _, p := range []*serveProcess{a, b} {
		for _, l := range logged(t, p.log) {
			f := strings.SplitN(l, " ", 3)
			items = append(items, item{shard: f[0], seq: f[1], data: f[2]})
		}
	}
	exactlyOnce(t, items, want)
	inOrder(t, items)
	if !strings.Contains(b.stderr.String(), `"component":"client-go"`) {
		t.Errorf("client-go's records are not in serve's JSON log:\n%s", b.stderr.String())
	}
}

// A DynamoDB table's stream through the ConfigMap, across a shard
// rotation: stopped, the next reader (a new replica, after the first
// released the Lease) resumes after the checkpoint, every change once and
// in order.
func TestProtocolKubeDynamoDBResumesFromTheConfigMap(t *testing.T) {
	k := newKubeFixture(t, "streams-dynamodb")
	f := newFixture(t)
	arn := f.stub.CreateTableStream("wallet-transfers", "NEW_AND_OLD_IMAGES", "id")
	var want []string
	write := func(from, to int) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("t:%03d", i)
			f.write(t, arn, "INSERT", id)
			want = append(want, "INSERT "+id)
		}
	}
	write(0, 10)
	if _, err := f.stub.RotateShard(arn); err != nil {
		t.Fatal(err)
	}
	write(10, 15)
	cfg := f.config(DynamoDB, arn)
	cfg.CheckpointFile, cfg.CheckpointConfigMap, cfg.CheckpointNamespace = "", "wallet-transfers-stream", k.ns
	cfg.BatchSize = 4
	cfg.Kube = k.client(t, nil)

	rec1 := newRecorder(DynamoDB, nil)
	stop := run(t, cfg, rec1)
	lambdatest.WaitFor(t, "15 changes", 30*time.Second, func() bool { return len(rec1.handled()) == 15 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cp := k.checkpoint(t, "wallet-transfers-stream")
	if cp.StreamARN != arn || len(cp.Shards) != 2 {
		t.Errorf("checkpoint %+v", cp)
	}

	write(15, 25)
	rec2 := newRecorder(DynamoDB, nil)
	stop = run(t, cfg, rec2)
	lambdatest.WaitFor(t, "the next 10", 30*time.Second, func() bool { return len(rec2.handled()) == 10 })
	time.Sleep(300 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	all := append(rec1.handled(), rec2.handled()...)
	if got := datas(all); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("handled %v\nwant    %v", got, want)
	}
}

// asServiceAccount creates a ServiceAccount bound to a Role with rules
// (none: no Role) and returns a client that authenticates with its token,
// as a pod's does.
func (k *kubeFixture) asServiceAccount(t *testing.T, name string, rules []rbacv1.PolicyRule) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	if _, err := k.kube.CoreV1().ServiceAccounts(k.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rules != nil {
		if _, err := k.kube.RbacV1().Roles(k.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := k.kube.RbacV1().RoleBindings(k.ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: k.ns}},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := k.kube.CoreV1().ServiceAccounts(k.ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(&rest.Config{Host: k.env.Config.Host, TLSClientConfig: rest.TLSClientConfig{CAData: k.env.Config.CAData},
		BearerToken: tok.Status.Token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The Role docs/lambda.md documents (get and update limited to the
// checkpoint's name, create on its own rule) is enough to read a stream;
// a pod without it is told what it lacks at start instead of standing by
// for ever.
func TestProtocolKubeTheDocumentedRoleIsEnough(t *testing.T) {
	k := newKubeFixture(t, "streams-rbac")
	f := newFixture(t)
	arn := f.stub.CreateStream("ledger", 1)
	f.put(t, "ledger", "acct", keyed("acct", 0, 5)...)
	const name = "settlement-ledger"
	resources := []string{"configmaps", "leases"}
	groups := []string{"", "coordination.k8s.io"}
	documented := []rbacv1.PolicyRule{
		{APIGroups: groups, Resources: resources, Verbs: []string{"get", "update"}, ResourceNames: []string{name}},
		{APIGroups: groups, Resources: resources, Verbs: []string{"create"}},
	}
	cfg := f.config(Kinesis, arn)
	cfg.CheckpointFile, cfg.CheckpointConfigMap, cfg.CheckpointNamespace = "", name, k.ns

	for _, c := range []struct {
		account string
		rules   []rbacv1.PolicyRule
		want    string
	}{
		{"no-role", nil, "may not get configmaps, create configmaps, update configmaps, get leases.coordination.k8s.io, create leases.coordination.k8s.io, update leases.coordination.k8s.io in namespace " + k.ns},
		{"no-create", documented[:1], "may not create configmaps, create leases.coordination.k8s.io in namespace " + k.ns},
	} {
		cfg.Kube = k.asServiceAccount(t, c.account, c.rules)
		src, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = src.Run(ctx, newRecorder(Kinesis, nil))
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Run = %v\nwant it to say %q", c.account, err, c.want)
		}
	}

	cfg.Kube = k.asServiceAccount(t, "fraud-score", documented)
	rec := newRecorder(Kinesis, nil)
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "five records", 30*time.Second, func() bool { return len(rec.handled()) == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := k.checkpoint(t, name).Shards["shardId-000000000000"].SequenceNumber, f.stub.Shards("ledger")[0].Records[4]; got != want {
		t.Errorf("checkpoint %s, want %s", got, want)
	}
}

// A standby SIGTERM'd while it waits stops at once, having read and
// invoked nothing, and leaves the holder alone.
func TestProtocolKubeStandbyStopsAtOnce(t *testing.T) {
	k := newKubeFixture(t, "streams-standby")
	f := newFixture(t)
	arn := f.stub.CreateStream("ledger", 1)
	f.put(t, "ledger", "acct", keyed("acct", 0, 5)...)
	cfg := f.config(Kinesis, arn)
	cfg.CheckpointFile, cfg.CheckpointConfigMap, cfg.CheckpointNamespace = "", "ledger-reader", k.ns
	cfg.Kube = k.client(t, nil)
	holder := newRecorder(Kinesis, nil)
	stopHolder := run(t, cfg, holder)
	lambdatest.WaitFor(t, "the holder to read", 30*time.Second, func() bool { return len(holder.handled()) == 5 })
	holderID := k.holder(t, "ledger-reader")

	standby := newRecorder(Kinesis, nil)
	stopStandby := run(t, cfg, standby)
	time.Sleep(time.Second) // a few of its tries at the Lease
	began := time.Now()
	if err := stopStandby(); err != nil {
		t.Errorf("the standby's Run = %v, want nil", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the standby took %v to stop", took)
	}
	if n := len(standby.all()); n != 0 {
		t.Errorf("the standby invoked %d times", n)
	}
	if h := k.holder(t, "ledger-reader"); h != holderID || h == "" {
		t.Errorf("the Lease is held by %q, want still %q", h, holderID)
	}
	if err := stopHolder(); err != nil {
		t.Fatal(err)
	}
}
