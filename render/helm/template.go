package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/source"
)

// ErrNotFound is returned (wrapped) when a layout has no such service or
// environment.
var ErrNotFound = errors.New("not in the layout")

// layout is an output directory, on disk or in memory.
type layout interface {
	// read returns a file by its slash-separated path in the layout.
	read(rel string) ([]byte, error)
	// list returns the names of the files of a directory of the layout.
	list(dir string) ([]string, error)
	loadChart() (*chart.Chart, error)
	// display is how errors name a file of the layout.
	display(rel string) string
}

type dirLayout string

func (d dirLayout) read(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), filepath.FromSlash(rel)))
}

func (d dirLayout) list(dir string) ([]string, error) {
	es, err := os.ReadDir(filepath.Join(string(d), filepath.FromSlash(dir)))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (d dirLayout) loadChart() (*chart.Chart, error) {
	return loader.LoadDir(filepath.Join(string(d), ChartDir))
}

func (d dirLayout) display(rel string) string {
	return filepath.Join(string(d), filepath.FromSlash(rel))
}

type treeLayout render.Tree

func (t treeLayout) read(rel string) ([]byte, error) {
	if b, ok := t[rel]; ok {
		return b, nil
	}
	return nil, &fs.PathError{Op: "open", Path: rel, Err: fs.ErrNotExist}
}

func (t treeLayout) list(dir string) ([]string, error) {
	var out []string
	for p := range t {
		if path.Dir(p) == dir {
			out = append(out, path.Base(p))
		}
	}
	if len(out) == 0 {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrNotExist}
	}
	return out, nil
}

func (t treeLayout) loadChart() (*chart.Chart, error) {
	var files []*loader.BufferedFile
	for _, p := range render.Tree(t).Paths() {
		if rel, ok := strings.CutPrefix(p, ChartDir+"/"); ok {
			files = append(files, &loader.BufferedFile{Name: rel, Data: t[p]})
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no %s/ in the tree", ChartDir)
	}
	return loader.LoadFiles(files)
}

func (t treeLayout) display(rel string) string { return rel }

// Services lists the services of a layout on disk, sorted.
func Services(dir string) ([]string, error) { return yamlNames(dirLayout(dir), servicesDir) }

// Envs lists the environments of a layout on disk, sorted.
func Envs(dir string) ([]string, error) { return yamlNames(dirLayout(dir), envDir) }

func yamlNames(l layout, dir string) ([]string, error) {
	files, err := l.list(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list %s: %w", l.display(dir), err)
	}
	var out []string
	for _, f := range files {
		if n, ok := strings.CutSuffix(f, ".yaml"); ok && !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Template renders one service in one environment of the layout in dir,
// as `helm template <svc> dir/chart -f <ValueFiles(svc, env)...>` does,
// into multi-document YAML ordered as Helm installs it. The release is
// named svc, in the namespace the environment's values set.
//
// It checks more than helm does: the values after the service's
// environments.<env> overrides are validated against the chart's schema
// too. An error in a values file is a *source.InputError naming the file,
// the line and the value: a YAML syntax error, a value the schema refuses,
// a fill value left empty.
func Template(ctx context.Context, dir, svc, env string) ([]byte, error) {
	return templateLayout(ctx, dirLayout(dir), svc, env)
}

// TemplateTree is Template on a layout in memory, as Render produced it.
func TemplateTree(ctx context.Context, t render.Tree, svc, env string) ([]byte, error) {
	return templateLayout(ctx, treeLayout(t), svc, env)
}

// EffectiveValues returns the values one service is rendered with in one
// environment: the chart's defaults, base, environment and service files
// merged as Helm merges them, then the service's environments.<env>
// overrides laid over them as the chart does. `cutover lint` compares them
// across environments.
func EffectiveValues(dir, svc, env string) (map[string]any, error) {
	v, err := loadValues(dirLayout(dir), svc, env)
	if err != nil {
		return nil, err
	}
	return v.effective, nil
}

// values are the parsed values files of one service in one environment.
type values struct {
	files []valuesFile
	// merged is what Helm reads: the files merged in order, coalesced with
	// the chart's defaults.
	merged    map[string]any
	effective map[string]any
	chart     *chart.Chart
	l         layout
	env       string
}

type valuesFile struct {
	rel   string
	paths map[string]int // exact dotted paths set in the file → line
	data  map[string]any
}

func loadValues(l layout, svc, env string) (*values, error) {
	for _, check := range []struct{ dir, name, what string }{{servicesDir, svc, "service"}, {envDir, env, "environment"}} {
		if _, err := l.read(check.dir + "/" + check.name + ".yaml"); err != nil {
			known, _ := yamlNames(l, check.dir)
			return nil, fmt.Errorf("%s %q: %w (known: %s)", check.what, check.name, ErrNotFound, strings.Join(known, ", "))
		}
	}
	ch, err := l.loadChart()
	if err != nil {
		return nil, fmt.Errorf("cannot load the chart: %w", err)
	}
	v := &values{chart: ch, l: l, env: env}
	merged := map[string]any{}
	for _, rel := range ValueFiles(svc, env) {
		data, err := l.read(rel)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", l.display(rel), err)
		}
		f, err := parseValuesFile(l.display(rel), data)
		if err != nil {
			return nil, err
		}
		f.rel = rel
		v.files = append(v.files, f)
		merged = mergeMaps(merged, f.data)
	}
	coalesced, err := chartutil.CoalesceValues(ch, merged)
	if err != nil {
		return nil, fmt.Errorf("cannot merge the values: %w", err)
	}
	v.merged = coalesced.AsMap()
	// The overlay is applied to a copy: Helm must see the values as they
	// are in the files; the chart applies the overlay itself.
	eff, err := copyValues(v.merged)
	if err != nil {
		return nil, err
	}
	if envs, ok := eff["environments"].(map[string]any); ok {
		if over, ok := envs[env].(map[string]any); ok {
			overlay(eff, over)
		}
	}
	v.effective = eff
	return v, nil
}

// parseValuesFile reads a values file as Helm does (sigs.k8s.io/yaml), and
// indexes the lines of its paths for error messages.
func parseValuesFile(display string, data []byte) (valuesFile, error) {
	f := valuesFile{paths: map[string]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return f, source.SyntaxError(display, err)
	}
	if len(root.Content) > 0 {
		indexPaths(f.paths, "", root.Content[0])
	}
	vals, err := chartutil.ReadValues(data)
	if err != nil {
		return f, &source.InputError{File: display, Err: err}
	}
	f.data = vals.AsMap()
	if f.data == nil {
		f.data = map[string]any{}
	}
	return f, nil
}

// indexPaths records the line of every path written in the file. Aliases
// are not followed: what they point at has its own lines, and following
// them lets a few lines of nested aliases expand exponentially.
func indexPaths(out map[string]int, prefix string, n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			out[p] = k.Line
			indexPaths(out, p, v)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := prefix + "[" + strconv.Itoa(i) + "]"
			out[p] = v.Line
			indexPaths(out, p, v)
		}
	}
}

// mergeMaps merges b over a as `helm -f a -f b` does: maps merge key by
// key, anything else in b replaces.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bv, ok := v.(map[string]any); ok {
			if av, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(av, bv)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// overlay lays src over dst in place as the chart's cutover.merge does:
// maps merge, anything else (false, 0 and null included) replaces.
func overlay(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				overlay(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

func copyValues(m map[string]any) (map[string]any, error) {
	c, err := copyAny(m)
	if err != nil {
		return nil, err
	}
	return c.(map[string]any), nil
}

func copyAny(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := copyAny(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := copyAny(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case chartutil.Values:
		return copyAny(map[string]any(x))
	default:
		return v, nil
	}
}

func templateLayout(ctx context.Context, l layout, svc, env string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := chartutil.ValidateReleaseName(svc); err != nil {
		return nil, fmt.Errorf("service %q cannot be a Helm release name: %w", svc, err)
	}
	v, err := loadValues(l, svc, env)
	if err != nil {
		return nil, err
	}
	if err := v.validate(); err != nil {
		return nil, err
	}
	ns, _ := v.effective["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	opts := chartutil.ReleaseOptions{Name: svc, Namespace: ns, Revision: 1, IsInstall: true}
	top, err := chartutil.ToRenderValuesWithSchemaValidation(v.chart, v.merged, opts, chartutil.DefaultCapabilities, true)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	files, err := engine.Render(v.chart, top)
	if err != nil {
		return nil, v.templateError(err)
	}
	_, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("cannot split the rendered manifests: %w", err)
	}
	var b bytes.Buffer
	for _, m := range manifests {
		// The form `helm template` prints.
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	return b.Bytes(), nil
}

// validate checks the values Helm reads, and the values after the
// environment overlay, against the chart's schema.
func (v *values) validate() error {
	if v.chart.Schema == nil {
		return nil
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(v.chart.Schema))
	if err != nil {
		return fmt.Errorf("chart schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///values.schema.json", schemaDoc); err != nil {
		return fmt.Errorf("chart schema: %w", err)
	}
	sch, err := c.Compile("file:///values.schema.json")
	if err != nil {
		return fmt.Errorf("chart schema: %w", err)
	}
	for _, vals := range []map[string]any{v.merged, v.effective} {
		doc, err := toJSONValue(vals)
		if err != nil {
			return err
		}
		err = sch.Validate(doc)
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return v.schemaError(ve)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// toJSONValue makes the values what the schema validator takes: JSON
// numbers, plain maps and slices.
func toJSONValue(m map[string]any) (any, error) {
	c, err := copyValues(m)
	if err != nil {
		return nil, err
	}
	return normalizeNumbers(c), nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	default:
		return v
	}
}

var printer = message.NewPrinter(language.English)

// schemaError turns the first (deepest) schema violation into an
// InputError naming the file and line that set the value.
func (v *values) schemaError(ve *jsonschema.ValidationError) error {
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	loc := leaf.InstanceLocation
	if ap, ok := leaf.ErrorKind.(*kind.AdditionalProperties); ok && len(ap.Properties) > 0 {
		// Name the misspelt key itself, not the map holding it.
		loc = append(append([]string{}, loc...), ap.Properties[0])
	}
	p := dottedPath(loc)
	msg := leaf.ErrorKind.LocalizedString(printer)
	file, line, field := v.locate(p)
	return &source.InputError{File: file, Line: line, Field: field, Err: errors.New(msg)}
}

// dottedPath writes a JSON pointer's tokens as a values path:
// containers[0].env[2].value.
func dottedPath(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}

// locate finds the file that decides the value at p: the service's
// environments.<env> overlay, else the last values file that sets it (or,
// for a value nobody set, its nearest set parent). Unset everywhere, the
// service file is blamed: that is where a service sets its values.
func (v *values) locate(p string) (file string, line int, field string) {
	svcFile := v.files[len(v.files)-1]
	over := "environments." + v.env
	for q := p; ; {
		if q != "" {
			if l, ok := svcFile.paths[over+"."+q]; ok {
				return v.l.display(svcFile.rel), l, over + "." + p
			}
			for i := len(v.files) - 1; i >= 0; i-- {
				if l, ok := v.files[i].paths[q]; ok {
					return v.l.display(v.files[i].rel), l, p
				}
			}
		}
		i := strings.LastIndexAny(q, ".[")
		if i <= 0 {
			break
		}
		q = q[:i]
	}
	return v.l.display(svcFile.rel), 0, p
}

// requiredRE finds the chart's own message in a Helm template error: every
// required and fail in the chart starts with the value path, then ": ".
var requiredRE = regexp.MustCompile(`(?:error calling (?:required|fail)|execution error at \([^)]*\)): ([A-Za-z][\w.\[\]/-]*): (.*)`)

// templateError turns a failure of the chart's required or fail into an
// InputError naming the value; other errors are returned as they are.
func (v *values) templateError(err error) error {
	m := requiredRE.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("cannot render the chart: %w", err)
	}
	file, line, field := v.locate(m[1])
	return &source.InputError{File: file, Line: line, Field: field, Err: errors.New(strings.TrimSpace(m[2]))}
}
