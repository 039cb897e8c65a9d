package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// FieldManager is the field manager cutover applies as.
const FieldManager = "cutover"

// Decode splits a multi-document YAML (or JSON) stream into objects,
// skipping empty documents and Helm's comment-only ones. A document
// without apiVersion or kind is an error.
func Decode(manifests []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests)))
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, fmt.Errorf("document %d: no apiVersion or kind", i)
		}
		out = append(out, u)
	}
}

// ApplyDryRun applies every object of manifests with server-side apply in
// dry-run mode (dryRun=All, fieldValidation=Strict, field manager
// "cutover"), into namespace where the object names none. The apiserver
// runs defaulting, validation, admission and the CRDs' schemas, and stores
// nothing. The error joins one error per rejected object, each naming
// kind and name.
func (e *Env) ApplyDryRun(ctx context.Context, namespace string, manifests []byte) error {
	objs, err := Decode(manifests)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		if err := e.applyOne(ctx, namespace, o, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Apply is ApplyDryRun for real: the objects are stored.
func (e *Env) Apply(ctx context.Context, namespace string, manifests []byte) error {
	objs, err := Decode(manifests)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		if err := e.applyOne(ctx, namespace, o, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *Env) applyOne(ctx context.Context, namespace string, o *unstructured.Unstructured, dryRun bool) error {
	gvk := o.GroupVersionKind()
	ref := fmt.Sprintf("%s %s", gvk.Kind, o.GetName())
	m, err := e.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %s is not served: %w", ref, gvk, err)
	}
	res := e.Dynamic.Resource(m.Resource)
	var ri interface {
		Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*unstructured.Unstructured, error)
	} = res
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = namespace
			o.SetNamespace(ns)
		}
		ri = res.Namespace(ns)
		ref = fmt.Sprintf("%s %s/%s", gvk.Kind, ns, o.GetName())
	}
	data, err := o.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts); err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	return nil
}
