package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/cutoverhq/cutover/lambda"
)

// On Kubernetes a stream's checkpoint lives in a ConfigMap and one replica
// reads the stream at a time: the holder of a coordination.k8s.io Lease of
// the same name, elected with client-go's leaderelection. The others stand
// by, healthy and ready (their function is warm), and the first to see the
// Lease free or expired takes over from the last checkpoint.
//
// Two fences keep a replica that has lost its turn from doing harm: it
// stops reading as soon as it cannot renew the Lease (RenewDeadline,
// shorter than the LeaseDuration a standby waits), and every checkpoint
// write is an update conditioned on the resourceVersion the writer last
// read or wrote, so a write after another replica's fails
// (ErrCheckpointTaken) and the writer stops at once.

// Defaults of the Lease's timings (client-go's usual values).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// CheckpointKey is the ConfigMap's data key that holds the checkpoint
// JSON, the same document a checkpoint file holds.
const CheckpointKey = "checkpoint.json"

// WriterAnnotation on the ConfigMap names the replica (its Lease identity)
// that wrote the checkpoint last.
const WriterAnnotation = "cutover.dev/checkpoint-writer"

// ServiceAccountNamespaceFile is where a pod's namespace is mounted with
// its service account token; --checkpoint-namespace defaults to it when
// POD_NAMESPACE is not set.
const ServiceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

var (
	// ErrCheckpointTaken is returned by KubeStore.Save when the ConfigMap
	// changed since this replica last read or wrote it (or was deleted):
	// another replica writes the checkpoint now, so this one must stop
	// reading. The source returns it from Run, serve exits 1, and the
	// restarted pod rejoins as a standby.
	ErrCheckpointTaken = errors.New("another replica has written the checkpoint since this one last read or wrote it: stopping so records are not invoked twice")
	// ErrLeaseLost is returned by Run when the replica could not renew
	// its Lease within RenewDeadline: a standby may take the stream over,
	// so this one stops reading at once.
	ErrLeaseLost = errors.New("lost the checkpoint Lease: another replica may read the stream now; stopping")
)

// KubeStore keeps the checkpoint in a ConfigMap's CheckpointKey. Load
// remembers the resourceVersion it read and every Save is an update
// conditioned on the last one read or written: optimistic concurrency used
// as a fencing token. The ConfigMap is created by the first Save when Load
// found none; its other keys, labels and annotations are kept.
type KubeStore struct {
	client    corev1client.ConfigMapsGetter
	namespace string
	name      string
	identity  string

	mu sync.Mutex
	// cm is the ConfigMap as last read or written; nil when Load found
	// none (or before Load), so Save creates it.
	cm *corev1.ConfigMap
	// taken is set by the first fenced Save; later ones fail the same.
	taken error
}

var _ Store = (*KubeStore)(nil)

// NewKubeStore returns a store for the ConfigMap namespace/name. identity
// goes into WriterAnnotation; empty: a random one. It does no I/O.
func NewKubeStore(client corev1client.ConfigMapsGetter, namespace, name, identity string) *KubeStore {
	if identity == "" {
		identity = NewIdentity()
	}
	return &KubeStore{client: client, namespace: namespace, name: name, identity: identity}
}

// Name is "configmap <namespace>/<name>", as errors and logs name it.
func (k *KubeStore) Name() string { return "configmap " + k.namespace + "/" + k.name }

// ResourceVersion is the ConfigMap's resourceVersion as last read or
// written; empty before Load or when there is none.
func (k *KubeStore) ResourceVersion() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cm == nil {
		return ""
	}
	return k.cm.ResourceVersion
}

// Load reads the ConfigMap: nil, nil when it or its CheckpointKey does
// not exist yet. A checkpoint that does not parse is an
// *source.InputError naming the ConfigMap, the key, the line and the
// field.
func (k *KubeStore) Load(ctx context.Context) (*Checkpoint, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cm, err := k.client.ConfigMaps(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		k.cm = nil
		return nil, nil
	case err != nil:
		return nil, k.apiError("read", err)
	}
	k.cm = cm
	data, ok := cm.Data[CheckpointKey]
	if !ok || strings.TrimSpace(data) == "" {
		return nil, nil
	}
	return ParseCheckpoint(k.Name()+" "+CheckpointKey, []byte(data))
}

// Save creates or updates the ConfigMap, conditioned on the
// resourceVersion last read or written; ErrCheckpointTaken when another
// replica has written it since.
func (k *KubeStore) Save(ctx context.Context, c *Checkpoint) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.taken != nil {
		return k.taken
	}
	if k.cm == nil {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: k.name, Namespace: k.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "cutover", "app.kubernetes.io/component": "stream-checkpoint"},
			},
		}
		k.stamp(cm, data)
		out, err := k.client.ConfigMaps(k.namespace).Create(ctx, cm, metav1.CreateOptions{FieldManager: "cutover"})
		switch {
		case apierrors.IsAlreadyExists(err):
			return k.fence(fmt.Errorf("%s was created by another replica after this one found none: %w", k.Name(), ErrCheckpointTaken))
		case err != nil:
			return k.apiError("create", err)
		}
		k.cm = out
		return nil
	}
	for attempt := 0; ; attempt++ {
		cm := k.cm.DeepCopy()
		k.stamp(cm, data)
		out, err := k.client.ConfigMaps(k.namespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "cutover"})
		switch {
		case err == nil:
			k.cm = out
			return nil
		case apierrors.IsNotFound(err):
			return k.fence(fmt.Errorf("%s was deleted while this replica read the stream: %w", k.Name(), ErrCheckpointTaken))
		case !apierrors.IsConflict(err):
			return k.apiError("update", err)
		}
		// A conflict. If this replica wrote last, the conflict comes from
		// its own earlier write whose answer was lost (a timeout): no one
		// else has written since, so go on from that version. Otherwise
		// another replica has: stop.
		cur, gerr := k.client.ConfigMaps(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			return k.fence(fmt.Errorf("%s was deleted while this replica read the stream: %w", k.Name(), ErrCheckpointTaken))
		case gerr != nil:
			return k.apiError("read", gerr)
		}
		if cur.Annotations[WriterAnnotation] != k.identity || attempt > 0 {
			return k.fence(fmt.Errorf("%s changed since this replica's last read or write (resourceVersion %s, now %s, written by %q): %w",
				k.Name(), k.cm.ResourceVersion, cur.ResourceVersion, cur.Annotations[WriterAnnotation], ErrCheckpointTaken))
		}
		k.cm = cur
	}
}

// stamp puts the checkpoint and the writer into cm.
func (k *KubeStore) stamp(cm *corev1.ConfigMap, data []byte) {
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[CheckpointKey] = string(data) + "\n"
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[WriterAnnotation] = k.identity
}

func (k *KubeStore) fence(err error) error {
	k.taken = err
	return err
}

// apiError says what the pod needs when the API refuses it.
func (k *KubeStore) apiError(verb string, err error) error {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		return fmt.Errorf("cannot %s %s: %w (the pod's service account needs get, create and update on configmaps and leases in namespace %s)", verb, k.Name(), err, k.namespace)
	}
	return fmt.Errorf("cannot %s %s: %w", verb, k.Name(), err)
}

// Close does nothing: the ConfigMap stays, for the next leader.
func (k *KubeStore) Close() error { return nil }

// NewIdentity is a Lease holder identity: $HOSTNAME (in a pod, its name)
// and a random suffix, so a restarted container never passes for the
// one before it.
func NewIdentity() string {
	host := os.Getenv("HOSTNAME")
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" {
		host = "cutover"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// checkKube checks and completes the Kubernetes settings of cfg.
func checkKube(cfg *Config) error {
	if cfg.CheckpointFile != "" {
		return errors.New("--checkpoint-file and --checkpoint-configmap exclude each other: the checkpoint is a local file (one process) or a ConfigMap (replicas on Kubernetes, one reading)")
	}
	if msgs := validation.IsDNS1123Subdomain(cfg.CheckpointConfigMap); len(msgs) > 0 {
		return fmt.Errorf("--checkpoint-configmap %q is not a ConfigMap name: %s", cfg.CheckpointConfigMap, msgs[0])
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	switch {
	case cfg.LeaseDuration < time.Second || cfg.RenewDeadline <= 0 || cfg.RetryPeriod <= 0:
		return fmt.Errorf("lease timings must be positive, the duration at least 1s (--lease-duration %v, --lease-renew-deadline %v, --lease-retry-period %v)",
			cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod)
	case cfg.LeaseDuration <= cfg.RenewDeadline:
		return fmt.Errorf("--lease-duration %v must be longer than --lease-renew-deadline %v, so a leader stops before a standby takes over",
			cfg.LeaseDuration, cfg.RenewDeadline)
	case float64(cfg.RenewDeadline) <= leaderelection.JitterFactor*float64(cfg.RetryPeriod):
		return fmt.Errorf("--lease-renew-deadline %v must be longer than 1.2 × --lease-retry-period %v", cfg.RenewDeadline, cfg.RetryPeriod)
	}
	if cfg.Identity == "" {
		cfg.Identity = NewIdentity()
	}
	return nil
}

// kubeClient reaches the API server as the pod's service account, or,
// outside a cluster, as $KUBECONFIG or ~/.kube/config says.
func kubeClient() (kubernetes.Interface, error) {
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("--checkpoint-configmap: not in a pod, and no kubeconfig ($KUBECONFIG, ~/.kube/config): %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("--checkpoint-configmap: in-cluster configuration: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "cutover-lambda-serve"
	// One checkpoint write per batch: client-go's default 5 requests a
	// second would hold batches back.
	cfg.QPS, cfg.Burst = 50, 100
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	return kubernetes.NewForConfig(cfg)
}

// runElected stands by until this replica holds the Lease, then reads the
// stream until ctx ends or the Lease is lost. The Lease is released only
// after reading has stopped and the batches in flight are checkpointed,
// so a graceful handover invokes nothing twice.
func (s *Source) runElected(ctx context.Context, inv lambda.Invoker) error {
	ns, name := s.cfg.CheckpointNamespace, s.cfg.CheckpointConfigMap
	if ns == "" {
		return fmt.Errorf("--checkpoint-configmap %s needs a namespace: give --checkpoint-namespace, set POD_NAMESPACE (a fieldRef to metadata.namespace), or run in a pod with its service account token mounted (%s)",
			name, ServiceAccountNamespaceFile)
	}
	kube := s.cfg.Kube
	if kube == nil {
		var err error
		if kube, err = kubeClient(); err != nil {
			return err
		}
	}
	if err := s.checkAccess(ctx, kube); err != nil {
		return err
	}
	if s.cfg.Store == nil {
		s.cfg.Store = NewKubeStore(kube.CoreV1(), ns, name, s.cfg.Identity)
	}
	started := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: name},
			Client:     kube.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: s.cfg.Identity},
		},
		LeaseDuration:   s.cfg.LeaseDuration,
		RenewDeadline:   s.cfg.RenewDeadline,
		RetryPeriod:     s.cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            ns + "/" + name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(c context.Context) { started <- c },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("lease %s/%s: %w", ns, name, err)
	}
	// The election outlives ctx: after SIGTERM the leader renews until
	// its batches in flight are checkpointed, and only then releases.
	elCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	elDone := make(chan struct{})
	go func() {
		defer close(elDone)
		le.Run(elCtx)
	}()
	defer func() {
		stopElection()
		<-elDone
		s.releaseLease(kube, ns, name)
	}()
	log := s.log.With("lease", ns+"/"+name, "identity", s.cfg.Identity)
	log.Info("standing by until this replica holds the stream's lease")
	waitStart := time.Now()
	var leading context.Context
	select {
	case <-ctx.Done():
		return nil
	case leading = <-started:
	}
	log.Info("holding the lease: reading the stream", "stoodBy", time.Since(waitStart).Round(time.Millisecond).String())
	rctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	unwatch := context.AfterFunc(leading, func() {
		stop(fmt.Errorf("lease %s/%s not renewed within %v: %w", ns, name, s.cfg.RenewDeadline, ErrLeaseLost))
	})
	defer unwatch()
	err = s.consume(rctx, inv)
	if err == nil {
		log.Info("releasing the lease")
	}
	return err
}

// releaseLease frees the Lease once the election has ended if this
// replica still holds it. client-go releases on cancel but gives up on a
// conflict, which happens when the cancel cut off a renew the API server
// had already applied (seen in CI): a standby would then wait out the whole
// LeaseDuration before taking the stream over.
func (s *Source) releaseLease(kube kubernetes.Interface, ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	leases := kube.CoordinationV1().Leases(ns)
	for range 3 {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != s.cfg.Identity {
			return
		}
		empty, one, now := "", int32(1), metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &empty, &one
		l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
		if _, err = leases.Update(ctx, l, metav1.UpdateOptions{}); err == nil || !apierrors.IsConflict(err) {
			if err != nil {
				s.log.Warn("could not release the lease; a standby takes over when it expires", "lease", ns+"/"+name, "error", err.Error())
			}
			return
		}
	}
}

// checkAccess asks the API server whether this replica may do what the
// election and the store do. Without it, a pod whose Role is missing
// would stand by for ever, as leader election only logs its refusals.
// An answer that does not come (the API server is unreachable) is logged
// and the election goes on, retrying as it does.
func (s *Source) checkAccess(ctx context.Context, kube kubernetes.Interface) error {
	ns, name := s.cfg.CheckpointNamespace, s.cfg.CheckpointConfigMap
	var missing []string
	for _, r := range []struct{ group, resource string }{{"", "configmaps"}, {"coordination.k8s.io", "leases"}} {
		for _, verb := range []string{"get", "create", "update"} {
			attr := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: r.group, Resource: r.resource}
			if verb != "create" {
				attr.Name = name
			}
			rev, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
				&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attr}}, metav1.CreateOptions{})
			if err != nil {
				s.log.Warn("cannot check the service account's access to the checkpoint; going on", "error", err.Error())
				return nil
			}
			if !rev.Status.Allowed {
				res := r.resource
				if r.group != "" {
					res += "." + r.group
				}
				missing = append(missing, verb+" "+res)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--checkpoint-configmap %s: this pod may not %s in namespace %s: its service account needs a Role allowing get, create and update on configmaps and on leases (coordination.k8s.io)",
			name, strings.Join(missing, ", "), ns)
	}
	return nil
}
