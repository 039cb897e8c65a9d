// Package convert is the pipeline behind `cutover convert`: read the input
// files, detect each one's format, let the importers turn them into
// services, check the services, and render the whole output layout into a
// render.Tree. Writing the tree to disk (atomically) is the caller's job, so
// a failed run never touches the previous output.
package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/argocd"
	"github.com/cutoverhq/cutover/render/helm"
	"github.com/cutoverhq/cutover/render/iam"
	"github.com/cutoverhq/cutover/render/report"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"

	// The importers register themselves.
	_ "github.com/cutoverhq/cutover/source/compose"
	_ "github.com/cutoverhq/cutover/source/ecs"
	_ "github.com/cutoverhq/cutover/source/lambda"
	_ "github.com/cutoverhq/cutover/source/systemd"
)

// Options configure a conversion.
type Options struct {
	// From forces the input format of every file ("ecs", "lambda",
	// "compose", "systemd"). "" means detect each file's format.
	From string
	// Source are the importers' settings.
	Source source.Options
	// Render are the renderers' settings.
	Render render.Options
}

// Result is what a conversion produced.
type Result struct {
	// Services are the imported services, sorted by name.
	Services []*service.Service
	// Tree is the output layout, not yet written.
	Tree render.Tree
	// Inputs maps each input path to the SHA-256 of its content, and
	// Outputs each output path to the SHA-256 of its content: the audit
	// trail records both.
	Inputs  map[string]string
	Outputs map[string]string
}

// Findings counts the findings of every service with the given status.
func (r *Result) Findings(s service.Status) int {
	n := 0
	for _, svc := range r.Services {
		n += svc.Report.Count(s)
	}
	return n
}

// renderers run in this order; each adds its own files to the tree.
var renderers = []struct {
	name string
	fn   func([]*service.Service, render.Options, render.Tree) error
}{
	{"helm", helm.Render},
	{"argocd", argocd.Render},
	{"iam", iam.Render},
	{"report", report.Render},
}

// Convert reads paths and renders the layout. Input errors are
// *source.InputError values naming the file, line and field.
func Convert(ctx context.Context, paths []string, opts Options) (*Result, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no input files")
	}
	if err := opts.Render.Validate(); err != nil {
		return nil, err
	}
	res := &Result{Inputs: map[string]string{}, Outputs: map[string]string{}}
	groups := map[string][]source.File{}
	// shared holds the files more than one importer read.
	shared := map[string]bool{}
	var formats []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, &source.InputError{File: p, Err: fmt.Errorf("cannot read: %w", unwrapPath(err))}
		}
		sum := sha256.Sum256(data)
		res.Inputs[p] = hex.EncodeToString(sum[:])
		f := source.File{Path: p, Data: data}
		fileFormats := []string{opts.From}
		if opts.From == "" {
			if fileFormats, err = source.DetectAll(f); err != nil {
				return nil, err
			}
		}
		if len(fileFormats) > 1 {
			shared[p] = true
		}
		for _, format := range fileFormats {
			if _, seen := groups[format]; !seen {
				formats = append(formats, format)
			}
			groups[format] = append(groups[format], f)
		}
	}
	sort.Strings(formats)
	srcOpts := opts.Source
	if srcOpts.Envs == nil {
		srcOpts.Envs = opts.Render.Defaults().Envs
	}
	var imported []*service.Service
	for _, format := range formats {
		imp, err := source.Lookup(format)
		if err != nil {
			return nil, err
		}
		svcs, err := imp.Import(ctx, groups[format], srcOpts)
		if err != nil {
			return nil, err
		}
		imported = append(imported, svcs...)
	}
	capNames(imported)
	byName := map[string]string{}
	for _, s := range imported {
		if prev, dup := byName[s.Name]; dup {
			return nil, &source.InputError{File: strings.Join(s.Origin.Files, ", "), Err: fmt.Errorf("service %q is also defined by %s; rename one", s.Name, prev)}
		}
		byName[s.Name] = strings.Join(s.Origin.Files, ", ")
		checkImages(s)
		separateProbes(s)
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("importer %s: %w", s.Origin.Format, err)
		}
		res.Services = append(res.Services, s)
	}
	if len(res.Services) == 0 {
		return nil, &source.InputError{File: strings.Join(paths, ", "), Err: fmt.Errorf("no service found in the input")}
	}
	reconcileShared(res.Services, shared)
	sort.Slice(res.Services, func(i, j int) bool { return res.Services[i].Name < res.Services[j].Name })
	res.Tree = render.Tree{}
	for _, r := range renderers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.fn(res.Services, opts.Render, res.Tree); err != nil {
			return nil, fmt.Errorf("render %s: %w", r.name, err)
		}
	}
	for p, b := range res.Tree {
		sum := sha256.Sum256(b)
		res.Outputs[p] = hex.EncodeToString(sum[:])
	}
	return res, nil
}

// capNames shortens the names Helm cannot use as release names, whatever
// importer derived them, and says so in the report: without it the chart
// renders but no Argo CD Application of the service can install it.
func capNames(svcs []*service.Service) {
	taken := map[string]bool{}
	for _, s := range svcs {
		taken[s.Name] = true
	}
	for _, s := range svcs {
		if len(s.Name) <= service.MaxNameLen {
			continue
		}
		old := s.Name
		s.Name = service.CapName(old, func(n string) bool { return taken[n] })
		taken[s.Name] = true
		file := ""
		if len(s.Origin.Files) > 0 {
			file = s.Origin.Files[0]
		}
		s.Report.Warn(file, 0, "", "service name "+s.Name,
			fmt.Sprintf("%q is longer than the %d characters Helm allows in a release name: the service, its chart values and its Argo CD Applications are named %q", old, service.MaxNameLen, s.Name))
	}
}

// unwrapPath drops the *PathError wrapper, whose message repeats the path
// the InputError already names.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// checkImages warns about images that are not pinned: a `latest` tag, or
// no tag at all, deploys whatever was pushed last. The image is kept as
// given (the input chose it), and kube-score's CRITICAL finding for it is
// named in the report.
func checkImages(s *service.Service) {
	all := append(append(append([]service.Container{}, s.Containers...), s.InitContainers...), s.Sidecars...)
	file := ""
	if len(s.Origin.Files) > 0 {
		file = s.Origin.Files[0]
	}
	for _, c := range all {
		if c.Image == "" || !service.UnpinnedImage(c.Image) {
			continue
		}
		s.Report.Warn(file, 0, "containers."+c.Name+".image", "values image",
			fmt.Sprintf("image %q is tagged latest or untagged: it is kept as given, but pin a version or digest (kube-score reports container-image-tag as CRITICAL)", c.Image))
	}
}

// reconcileShared removes, from the reports of files more than one
// importer read, the "dropped" findings one importer wrote for what
// another reported on: the Lambda importer lists every resource of a
// template it does not convert, and the ECS service beside its functions
// is not lost; the ECS importer lists the template's functions as
// foreign, and the Lambda importer says what became of each.
func reconcileShared(svcs []*service.Service, shared map[string]bool) {
	if len(shared) == 0 {
		return
	}
	type fileField struct{ file, field string }
	// converted and reported hold, per service, every field and every
	// ancestor path of a field its importer reported on: without
	// dropping it, and at all.
	converted := make([]map[fileField]bool, len(svcs))
	reported := make([]map[fileField]bool, len(svcs))
	for i, s := range svcs {
		converted[i], reported[i] = map[fileField]bool{}, map[fileField]bool{}
		for _, f := range s.Report.Findings {
			if !shared[f.File] || f.Foreign {
				continue
			}
			for p := f.Field; p != ""; p = source.ParentPath(p) {
				reported[i][fileField{f.File, p}] = true
				if f.Status != service.Dropped {
					converted[i][fileField{f.File, p}] = true
				}
			}
		}
	}
	for i, s := range svcs {
		kept := s.Report.Findings[:0]
		for _, f := range s.Report.Findings {
			k := fileField{f.File, f.Field}
			if f.Status == service.Dropped && shared[f.File] &&
				(touchedElsewhere(svcs, converted, i, k) || f.Foreign && touchedElsewhere(svcs, reported, i, k)) {
				continue
			}
			kept = append(kept, f)
		}
		s.Report.Findings = kept
	}
}

// touchedElsewhere says whether a service from another importer than
// svcs[i]'s reported on the field or on something inside it.
func touchedElsewhere[K comparable](svcs []*service.Service, touched []map[K]bool, i int, k K) bool {
	for j, m := range touched {
		if svcs[j].Origin.Format != svcs[i].Origin.Format && m[k] {
			return true
		}
	}
	return false
}
