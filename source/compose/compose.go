// Package compose imports docker-compose files: one service.Service per
// compose service, with a report line for every field of the file.
//
// compose-go (the reference implementation used by `docker compose`)
// parses, merges and validates the files, so profiles, extends, include,
// merge keys and the many short and long syntaxes behave exactly as they
// do for `docker compose`. What compose-go cannot do for a conversion is
// done around it: variables are interpolated here, so an unset variable
// becomes a value to fill instead of an error or a blank (interpolate.go);
// env_file, secret and config files are looked at (never secret ones)
// beside the compose file; and every field is located in the raw YAML so
// the report and errors name its line.
package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

func init() { source.Register("compose", Importer{}) }

// Importer reads docker-compose files.
type Importer struct{}

var _ source.Importer = Importer{}

var composeName = regexp.MustCompile(`^(docker-)?compose([.-][^/\\]*)?\.ya?ml$`)

// serviceKeys are keys only a compose service has; one of them under a
// top-level services entry tells a compose file from other YAML with a
// `services:` key.
var serviceKeys = map[string]bool{
	"image": true, "build": true, "command": true, "entrypoint": true, "ports": true,
	"environment": true, "volumes": true, "depends_on": true, "restart": true,
	"healthcheck": true, "deploy": true, "env_file": true, "extends": true, "expose": true,
}

// Detect reports whether f is a compose file: by its name, or by a
// top-level `services:` map whose entries look like compose services.
func (Importer) Detect(f source.File) bool {
	if composeName.MatchString(strings.ToLower(filepath.Base(f.Path))) {
		return true
	}
	if !bytes.Contains(f.Data, []byte("services")) {
		return false
	}
	var doc struct {
		Services map[string]any `yaml:"services"`
	}
	if yaml.Unmarshal(f.Data, &doc) != nil || len(doc.Services) == 0 {
		return false
	}
	for _, s := range doc.Services {
		m, ok := s.(map[string]any)
		if !ok {
			return false
		}
		hit := false
		for k := range m {
			if serviceKeys[k] {
				hit = true
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// Import converts compose files. Files in the same directory form one
// project and are merged in the order given, as `docker compose -f a -f b`
// does (compose.yaml then compose.override.yaml); files in different
// directories are separate projects.
func (Importer) Import(ctx context.Context, files []source.File, opts source.Options) ([]*service.Service, error) {
	defer quietLibraryLog()()
	var groups [][]source.File
	index := map[string]int{}
	for _, f := range files {
		dir := filepath.Dir(f.Path)
		i, ok := index[dir]
		if !ok {
			i = len(groups)
			index[dir] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], f)
	}
	var out []*service.Service
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		svcs, err := importProject(ctx, g, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, svcs...)
	}
	return out, nil
}

// project is one loaded compose project and what the importer knows about
// its raw files.
type project struct {
	dir   string
	files []rawFile
	// includes caches included(); nil until it is first called.
	includes *[]rawFile
	env      map[string]string
	ip       *interpolator
	p        *types.Project
	name     string
	opts     source.Options
	// main is the index in files of the first file the user gave; the
	// files before it are included or extended ones (aux.go).
	main int
}

// rawFile is one input file as written.
type rawFile struct {
	source.File
	pos  *source.Positions
	root *yaml.Node // original document, aliases not expanded
	// derived is true for the document aux.go makes of an extended
	// service: only that service and the x- extensions are left in it.
	derived bool
}

func importProject(ctx context.Context, files []source.File, opts source.Options) ([]*service.Service, error) {
	pr := &project{dir: filepath.Dir(files[0].Path), opts: opts}
	env, err := projectEnv(pr.dir, opts.Env)
	if err != nil {
		return nil, err
	}
	pr.env = env
	pr.ip = newInterpolator(env)

	var configFiles []types.ConfigFile
	for _, f := range files {
		var orig, work yaml.Node
		if err := yaml.Unmarshal(f.Data, &orig); err != nil {
			return nil, source.SyntaxError(f.Path, err)
		}
		// Every walk of the document, ParsePositions' too, follows
		// aliases: refuse a document that expands to far more than it
		// holds (the "billion laughs") before walking it.
		if expandedSize(&orig, map[*yaml.Node]int{}, 0) > maxNodes {
			return nil, &source.InputError{File: f.Path, Err: errors.New("cannot parse: too many YAML nodes after alias expansion")}
		}
		pos, err := source.ParsePositions(f.Path, f.Data)
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(f.Data, &work); err != nil {
			return nil, source.SyntaxError(f.Path, err)
		}
		if len(work.Content) == 0 || work.Content[0].Kind != yaml.MappingNode {
			return nil, &source.InputError{File: f.Path, Line: 1, Err: errors.New("a compose file is a YAML mapping with a services: key")}
		}
		if err := checkShape(f.Path, pos, work.Content[0]); err != nil {
			return nil, err
		}
		// compose-go logs a warning about `version`; the report says it.
		dropKey(work.Content[0], "version")
		data, err := pr.ip.prepare(f.Path, pos, &work)
		if err != nil {
			return nil, err
		}
		pr.files = append(pr.files, rawFile{File: f, pos: pos, root: orig.Content[0]})
		abs, err := filepath.Abs(f.Path)
		if err != nil {
			return nil, &source.InputError{File: f.Path, Err: err}
		}
		configFiles = append(configFiles, types.ConfigFile{Filename: abs, Content: data})
	}
	pr.name = projectName(pr)
	pr.scanIncluded()

	absDir, err := filepath.Abs(pr.dir)
	if err != nil {
		return nil, &source.InputError{File: files[0].Path, Err: err}
	}
	p, err := load(ctx, types.ConfigDetails{
		WorkingDir:  absDir,
		ConfigFiles: configFiles,
		// Empty on purpose: interpolation is done (interpolate.go), and an
		// environment here would let compose-go copy secret values from
		// it into the model (secrets with `environment:`).
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName(pr.name, true)
		o.Profiles = opts.Profiles
		// env_file is read here, where a missing file is not fatal and
		// the keys stay apart from `environment` (they become ConfigMap
		// keys loaded with envFrom).
		o.SkipResolveEnvironment = true
		// The named files were interpolated already and escaped, so this
		// only turns their $$ back into $. Files compose-go reads itself
		// (include:) get the same rules: an unset variable becomes a
		// value to fill, not a blank.
		o.Interpolate.Substitute = func(s string, m template.Mapping) (string, error) {
			return pr.ip.substitute(s)
		}
		o.Interpolate.LookupValue = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	})
	if err != nil {
		// The error may be in an included or extended file: track them
		// so it names that file and line.
		pr.addAuxFiles()
		return nil, pr.loadError(err)
	}
	pr.p = p
	if len(p.Services) == 0 {
		f := pr.files[0]
		msg := "the file defines no service"
		if len(p.DisabledServices) > 0 {
			msg = fmt.Sprintf("every service is in a profile that is not enabled (%s); enable one with --profile", strings.Join(allProfiles(p), ", "))
		}
		return nil, &source.InputError{File: f.Path, Line: f.pos.Line("services"), Field: "services", Err: errors.New(msg)}
	}
	pr.addAuxFiles()
	return pr.convert()
}

// libraryLog guards logrus's global output while an import silences it.
var libraryLog sync.Mutex

// quietLibraryLog silences logrus, compose-go's logger, until the function
// it returns is called. compose-go writes raw lines to stderr ("The
// \"DB_PORT\" variable is not set. Defaulting to a blank string.") from
// paths that do not take its WithoutLogging option; the report says all
// of it already, at the field's line.
func quietLibraryLog() (restore func()) {
	libraryLog.Lock()
	prev := logrus.StandardLogger().Out
	logrus.SetOutput(io.Discard)
	return func() {
		logrus.SetOutput(prev)
		libraryLog.Unlock()
	}
}

// load runs compose-go's loader, turning a panic of it (it asserts types
// its schema check has not always checked: `extends: {file: 0}`) into an
// error: a file must never crash the conversion.
func load(ctx context.Context, d types.ConfigDetails, opts ...func(*loader.Options)) (p *types.Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("compose cannot load the file: %v", r)
		}
	}()
	return loader.LoadWithContext(ctx, d, opts...)
}

// checkShape rejects what the importer's own walk cannot take, before
// compose-go runs: services that are not mappings.
func checkShape(file string, pos *source.Positions, root *yaml.Node) error {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "services" {
			continue
		}
		if v.Kind != yaml.MappingNode {
			if v.Tag == "!!null" {
				return nil
			}
			return &source.InputError{File: file, Line: k.Line, Field: "services", Err: errors.New("services must be a mapping of service names to services")}
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			sk, sv := v.Content[j], v.Content[j+1]
			if sv.Kind != yaml.MappingNode && sv.Kind != yaml.AliasNode && sv.Tag != "!!null" {
				return &source.InputError{File: file, Line: sk.Line, Field: "services." + sk.Value, Err: errors.New("a service must be a mapping")}
			}
			if err := checkExtends(file, "services."+sk.Value, sv); err != nil {
				return err
			}
		}
	}
	return nil
}

func allProfiles(p *types.Project) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range p.DisabledServices {
		for _, pr := range s.Profiles {
			if !seen[pr] {
				seen[pr] = true
				out = append(out, pr)
			}
		}
	}
	sort.Strings(out)
	return out
}

// projectEnv is the environment variables are interpolated from: the
// .env file beside the compose file, overridden by the given environment,
// as docker compose does.
func projectEnv(dir string, given map[string]string) (map[string]string, error) {
	env := map[string]string{}
	path := filepath.Join(dir, ".env")
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &source.InputError{File: path, Err: err}
		}
		vals, err := dotenv.UnmarshalBytesWithLookup(data, func(k string) (string, bool) {
			v, ok := given[k]
			return v, ok
		})
		if err != nil {
			return nil, &source.InputError{File: path, Err: fmt.Errorf("cannot parse: %w", err)}
		}
		for k, v := range vals {
			env[k] = v
		}
	}
	for k, v := range given {
		env[k] = v
	}
	return env, nil
}

// projectName is the top-level name:, or the directory's name, as docker
// compose picks it; secret names proposed in the report start with it.
func projectName(pr *project) string {
	for _, f := range pr.files {
		for i := 0; i+1 < len(f.root.Content); i += 2 {
			if f.root.Content[i].Value == "name" {
				v := f.root.Content[i+1].Value
				if !strings.Contains(v, "$") {
					if n := loader.NormalizeProjectName(v); n != "" {
						return n
					}
				}
			}
		}
	}
	abs, err := filepath.Abs(pr.dir)
	if err == nil {
		if n := loader.NormalizeProjectName(filepath.Base(abs)); n != "" {
			return n
		}
	}
	return "compose"
}

func dropKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// expandedSize counts the nodes of n with aliases expanded, memoized so
// that it runs in the size of the file, and saturating at maxNodes+1.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int, depth int) int {
	if n == nil {
		return 0
	}
	if depth > 500 {
		return maxNodes + 1
	}
	if n.Kind == yaml.AliasNode {
		return expandedSize(n.Alias, memo, depth+1)
	}
	if v, ok := memo[n]; ok {
		return v
	}
	total := 1
	for _, c := range n.Content {
		total += expandedSize(c, memo, depth+1)
		if total > maxNodes {
			total = maxNodes + 1
			break
		}
	}
	memo[n] = total
	return total
}

// checkExtends requires extends' file and service to be strings, as the
// compose specification does (compose-go would panic on `file: 0`).
func checkExtends(file, path string, svc *yaml.Node) error {
	if svc.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(svc.Content); i += 2 {
		if svc.Content[i].Value != "extends" {
			continue
		}
		ext := svc.Content[i+1]
		if ext.Kind == yaml.ScalarNode && ext.Tag != "!!str" {
			return &source.InputError{File: file, Line: ext.Line, Field: path + ".extends", Err: errors.New("extends must name a service (a string) or be a mapping with file and service")}
		}
		if ext.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(ext.Content); j += 2 {
			k, v := ext.Content[j], ext.Content[j+1]
			if (k.Value == "file" || k.Value == "service") && (v.Kind != yaml.ScalarNode || v.Tag != "!!str") {
				return &source.InputError{File: file, Line: v.Line, Field: path + ".extends." + k.Value, Err: fmt.Errorf("extends.%s must be a string", k.Value)}
			}
		}
	}
	return nil
}
