package helm

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// renderPod renders one server with the given main container in prod,
// after edit (if any) rewrites the layout, and returns its pod template.
func renderPod(t *testing.T, c service.Container, edit func(render.Tree)) (*corev1.PodTemplateSpec, error) {
	t.Helper()
	c.Name = "app"
	if c.Image == "" {
		c.Image = "registry.example.com/app:1.0.0"
	}
	svc := &service.Service{Name: "hardened", Origin: service.Origin{Format: "ecs", Files: []string{"td.json"}}, Containers: []service.Container{c}}
	tree := render.Tree{}
	if err := Render([]*service.Service{svc}, render.Options{Region: "eu-west-1"}, tree); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(tree)
	}
	out, err := TemplateTree(context.Background(), tree, "hardened", "prod")
	if err != nil {
		return nil, err
	}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		if !strings.Contains(doc, "\nkind: Deployment\n") {
			continue
		}
		var d appsv1.Deployment
		if err := sigsyaml.UnmarshalStrict([]byte(strings.TrimPrefix(doc, "---\n")), &d); err != nil {
			t.Fatal(err)
		}
		return &d.Spec.Template, nil
	}
	t.Fatalf("no Deployment in:\n%s", out)
	return nil, nil
}

// replaceIn rewrites one file of the tree; old must be there.
func replaceIn(t *testing.T, tree render.Tree, file, old, new string) {
	t.Helper()
	if !strings.Contains(string(tree[file]), old) {
		t.Fatalf("%s has no %q", file, old)
	}
	tree[file] = []byte(strings.Replace(string(tree[file]), old, new, 1))
}

func TestLimitsFromRequests(t *testing.T) {
	for _, c := range []struct {
		name             string
		res              service.Resources
		cpuReq, cpuLimit string
		memReq, memLimit string
	}{
		{"nothing said: defaults, and a CPU limit from the default request", service.Resources{}, "100m", "400m", "256Mi", "256Mi"},
		{"decimal CPU request", service.Resources{CPURequest: "0.1", MemoryRequest: "96Mi", MemoryLimit: "96Mi"}, "100m", "400m", "96Mi", "96Mi"},
		{"whole CPUs come out whole", service.Resources{CPURequest: "250m", MemoryLimit: "1Gi"}, "250m", "1", "1Gi", "1Gi"},
		{"fractional CPUs", service.Resources{CPURequest: "1.5", MemoryLimit: "1Gi"}, "1500m", "6", "1Gi", "1Gi"},
		{"a millicore", service.Resources{CPURequest: "3m", MemoryLimit: "1Gi"}, "3m", "12m", "1Gi", "1Gi"},
		{"the input's CPU limit is kept", service.Resources{CPURequest: "500m", CPULimit: "750m", MemoryLimit: "1Gi"}, "500m", "750m", "1Gi", "1Gi"},
		{"a CPU limit alone is the request too", service.Resources{CPULimit: "1500m", MemoryLimit: "1Gi"}, "1500m", "1500m", "1Gi", "1Gi"},
		{"a memory request alone gets twice its size", service.Resources{CPURequest: "1", MemoryRequest: "96Mi"}, "1", "4", "96Mi", "192Mi"},
		{"fractional memory keeps its unit", service.Resources{CPURequest: "1", MemoryRequest: "0.75Gi"}, "1", "4", "768Mi", "1536Mi"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod, err := renderPod(t, service.Container{Resources: c.res}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := pod.Spec.Containers[0].Resources
			for _, q := range []struct{ what, got, want string }{
				{"requests.cpu", r.Requests.Cpu().String(), c.cpuReq},
				{"limits.cpu", r.Limits.Cpu().String(), c.cpuLimit},
				{"requests.memory", r.Requests.Memory().String(), c.memReq},
				{"limits.memory", r.Limits.Memory().String(), c.memLimit},
			} {
				if q.got != q.want {
					t.Errorf("%s = %s, want %s", q.what, q.got, q.want)
				}
			}
		})
	}

	t.Run("ratio 0 sets no limit", func(t *testing.T) {
		pod, err := renderPod(t, service.Container{Resources: service.Resources{CPURequest: "1", MemoryRequest: "1Gi"}}, func(tree render.Tree) {
			replaceIn(t, tree, BaseValuesFile, "cpuLimitRatio: 4", "cpuLimitRatio: 0")
			replaceIn(t, tree, BaseValuesFile, "memoryLimitRatio: 2", "memoryLimitRatio: 0")
		})
		if err != nil {
			t.Fatal(err)
		}
		if l := pod.Spec.Containers[0].Resources.Limits; !l.Cpu().IsZero() || !l.Memory().IsZero() {
			t.Errorf("limits %v with both ratios 0", l)
		}
	})

	// A quantity the chart cannot multiply is refused naming the value,
	// not turned into a wrong limit.
	t.Run("an exotic request is refused", func(t *testing.T) {
		_, err := renderPod(t, service.Container{Resources: service.Resources{CPURequest: "1e3", MemoryLimit: "1Gi"}}, nil)
		var ie *source.InputError
		if !errors.As(err, &ie) || ie.Field != "resources" || ie.File != ServiceValuesFile("hardened") || !strings.Contains(err.Error(), "cpuLimitRatio") {
			t.Fatalf("err = %v, want an InputError on resources naming cpuLimitRatio", err)
		}
	})
}

func TestHardeningDefaults(t *testing.T) {
	yes, no := true, false
	uid := int64(1000)

	t.Run("what the input did not say", func(t *testing.T) {
		pod, err := renderPod(t, service.Container{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ps, sc := pod.Spec.SecurityContext, pod.Spec.Containers[0].SecurityContext
		if *ps.RunAsUser != 10001 || *ps.RunAsGroup != 10001 || *ps.FSGroup != 10001 {
			t.Errorf("pod securityContext %+v, want 10001 as user, group and fsGroup", ps)
		}
		if !*sc.ReadOnlyRootFilesystem || !*sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation {
			t.Errorf("container securityContext %+v", sc)
		}
		if m := pod.Spec.Containers[0].VolumeMounts; len(m) != 1 || m[0].MountPath != "/tmp" || m[0].Name != "tmp" {
			t.Errorf("mounts %+v, want the writable /tmp", m)
		}
		if v := pod.Spec.Volumes; len(v) != 1 || v[0].Name != "tmp" || v[0].EmptyDir == nil {
			t.Errorf("volumes %+v, want the /tmp emptyDir", v)
		}
	})

	t.Run("what the input said is kept", func(t *testing.T) {
		pod, err := renderPod(t, service.Container{RunAsUser: &uid, ReadOnlyRootFilesystem: &no}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sc := pod.Spec.Containers[0].SecurityContext
		if *sc.RunAsUser != 1000 || sc.RunAsGroup != nil || *sc.ReadOnlyRootFilesystem {
			t.Errorf("container securityContext %+v, want user 1000 and a writable root", sc)
		}
		if len(pod.Spec.Containers[0].VolumeMounts) != 0 || len(pod.Spec.Volumes) != 0 {
			t.Errorf("a writable root got a /tmp volume: %+v", pod.Spec.Volumes)
		}
	})

	t.Run("root is not marked non-root", func(t *testing.T) {
		root := int64(0)
		pod, err := renderPod(t, service.Container{RunAsUser: &root, ReadOnlyRootFilesystem: &yes}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sc := pod.Spec.Containers[0].SecurityContext; sc.RunAsNonRoot != nil {
			t.Errorf("runAsNonRoot %v on a root container: the kubelet would refuse to start it", *sc.RunAsNonRoot)
		}
	})

	t.Run("writableTmp off", func(t *testing.T) {
		pod, err := renderPod(t, service.Container{}, func(tree render.Tree) {
			replaceIn(t, tree, BaseValuesFile, "writableTmp:\n  enabled: true", "writableTmp:\n  enabled: false")
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(pod.Spec.Volumes) != 0 || len(pod.Spec.Containers[0].VolumeMounts) != 0 {
			t.Errorf("writableTmp.enabled false still mounts /tmp: %+v", pod.Spec.Volumes)
		}
	})

	t.Run("a tmpfs /tmp", func(t *testing.T) {
		pod, err := renderPod(t, service.Container{}, func(tree render.Tree) {
			replaceIn(t, tree, BaseValuesFile, "  sizeLimit: \"\"\n  medium: \"\"", "  sizeLimit: 64Mi\n  medium: Memory")
		})
		if err != nil {
			t.Fatal(err)
		}
		if e := pod.Spec.Volumes[0].EmptyDir; e == nil || e.Medium != corev1.StorageMediumMemory || e.SizeLimit.String() != "64Mi" {
			t.Errorf("tmp volume %+v", pod.Spec.Volumes[0])
		}
	})
}
