package lint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cutoverhq/cutover/source"
)

// Options tune a lint run. The zero value lints everything.
type Options struct {
	// Services limits lint to these services; nil means all of the
	// layout's.
	Services []string
	// Envs limits lint to these environments; nil means all. Drift is
	// computed across the environments linted.
	Envs []string
	// Ignore lists check ids (kube-score's or cutover's) whose findings
	// are dropped: a team's decision that a check does not apply to it,
	// as kube-score's --ignore-test. Nil means every check counts.
	Ignore []string
}

// ErrNotLayout says the directory is not a cutover layout.
var ErrNotLayout = errors.New("not a cutover layout")

// Dir lints the layout in dir. The error is ErrNotLayout (wrapped) when
// dir is not a layout, a *source.InputError when a values file cannot be
// parsed, or an I/O error; problems in the layout itself are findings.
func Dir(ctx context.Context, dir string, opts Options) (*Result, error) {
	for _, p := range []string{chartFile, baseFile} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return nil, fmt.Errorf("%s: %w: no %s", dir, ErrNotLayout, p)
		}
	}
	svcs, err := listServices(dir)
	if err != nil {
		return nil, err
	}
	envs, err := listEnvs(dir)
	if err != nil {
		return nil, err
	}
	if svcs, err = pick("service", svcs, opts.Services); err != nil {
		return nil, err
	}
	if envs, err = pick("environment", envs, opts.Envs); err != nil {
		return nil, err
	}
	if len(svcs) == 0 || len(envs) == 0 {
		return nil, fmt.Errorf("%s: %w: no services or no environments under values/", dir, ErrNotLayout)
	}

	base, err := readValues(dir, baseFile)
	if err != nil {
		return nil, err
	}
	keys, err := environmentKeys(base)
	if err != nil {
		return nil, err
	}
	envVals := map[string]valuesFile{}
	for _, e := range envs {
		if envVals[e], err = readValues(dir, envFile(e)); err != nil {
			return nil, err
		}
	}

	res := &Result{Services: svcs, Envs: envs, Findings: []Finding{}}
	for _, s := range svcs {
		sv, err := readValues(dir, serviceFile(s))
		if err != nil {
			return nil, err
		}
		files := map[string]valuesFile{base.Path: base, sv.Path: sv}
		for _, e := range envs {
			files[envVals[e].Path] = envVals[e]
		}
		var perEnv []envValues
		var rendered []Finding
		unfilledIn := map[string][]string{} // "path\x00file\x00value" → envs
		for _, e := range envs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t := effective(base, envVals[e], sv, e)
			ev := envValues{Env: e, Leaves: map[string]leaf{}, Specific: map[string]bool{
				envFile(e):                     true,
				serviceFile(s) + envSection(e): true,
			}}
			flatten(t, "", ev.Leaves)
			perEnv = append(perEnv, ev)

			missing := map[string]bool{}
			for _, u := range unfilled(t) {
				k := u.Path + "\x00" + u.File + "\x00" + u.Value
				unfilledIn[k] = append(unfilledIn[k], e)
				missing[u.Path] = true
			}
			rendered = append(rendered, renderAndCheck(ctx, dir, s, e, ev.Leaves, files, missing)...)
		}
		res.Findings = append(res.Findings, collapse(rendered, len(envs))...)
		res.Findings = append(res.Findings, unfilledFindings(s, unfilledIn, len(envs), files)...)
		res.Findings = append(res.Findings, drift(s, perEnv, keys, baseFile, files)...)
	}
	if len(opts.Ignore) > 0 {
		ignore := map[string]bool{}
		for _, c := range opts.Ignore {
			ignore[c] = true
		}
		kept := res.Findings[:0]
		for _, f := range res.Findings {
			if !ignore[f.Check] {
				kept = append(kept, f)
			}
		}
		res.Findings = kept
	}
	sortFindings(res.Findings, envs)
	return res, nil
}

func pick(what string, have, want []string) ([]string, error) {
	if len(want) == 0 {
		return have, nil
	}
	known := map[string]bool{}
	for _, h := range have {
		known[h] = true
	}
	for _, w := range want {
		if !known[w] {
			return nil, fmt.Errorf("unknown %s %q (layout has: %s)", what, w, strings.Join(have, ", "))
		}
	}
	return want, nil
}

func readValues(dir, rel string) (valuesFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return valuesFile{Path: rel, Data: map[string]any{}}, nil
		}
		return valuesFile{}, err
	}
	return parseValues(rel, b)
}

// renderAndCheck renders one service in one environment and runs the
// checks on the result. A failed render is a finding, not an error: the
// chart names the value it refuses (render/helm turns that into an
// InputError with file, line and value path). A fill value already
// reported as unfilled is not reported again.
func renderAndCheck(ctx context.Context, dir, svc, env string, leaves map[string]leaf, files map[string]valuesFile, unfilled map[string]bool) []Finding {
	out, err := template(ctx, dir, svc, env)
	if err != nil {
		f := Finding{Severity: Error, Service: svc, Env: env, Check: CheckRender, Source: SourceCutover, File: serviceFile(svc)}
		var ie *source.InputError
		if errors.As(err, &ie) {
			if unfilled[ie.Field] {
				return nil
			}
			f.File, f.Line = relPath(dir, ie.File), ie.Line
			f.Message = "the chart does not render: " + ie.Err.Error()
			if ie.Field != "" {
				f.Message = "the chart does not render: " + ie.Field + ": " + ie.Err.Error()
			}
		} else {
			f.Message = "the chart does not render: " + err.Error()
		}
		return []Finding{f}
	}
	return checkRendered(svc, env, out, leaves, files)
}

// collapse turns a finding that every environment has alike into one
// finding for every environment (Env ""): a chart default that fails a
// check fails it everywhere, and saying so three times hides the findings
// that differ.
func collapse(fs []Finding, nEnvs int) []Finding {
	if nEnvs < 2 {
		return fs
	}
	key := func(f Finding) Finding { f.Env = ""; return f }
	envs := map[Finding]map[string]bool{}
	for _, f := range fs {
		k := key(f)
		if envs[k] == nil {
			envs[k] = map[string]bool{}
		}
		envs[k][f.Env] = true
	}
	var out []Finding
	done := map[Finding]bool{}
	for _, f := range fs {
		k := key(f)
		if len(envs[k]) < nEnvs {
			out = append(out, f)
			continue
		}
		if !done[k] {
			done[k] = true
			out = append(out, k)
		}
	}
	return out
}

// relPath makes a path render/helm reports relative to the layout.
func relPath(dir, p string) string {
	if r, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return filepath.ToSlash(p)
}

// checkRendered runs kube-score and cutover's checks on rendered output.
func checkRendered(svc, env string, manifests []byte, leaves map[string]leaf, files map[string]valuesFile) []Finding {
	var fs []Finding
	objs, err := decodeObjects(manifests)
	if err != nil {
		return []Finding{{Severity: Error, Service: svc, Env: env, Check: CheckRender, Source: SourceCutover,
			Message: "the chart renders output that does not decode: " + err.Error(), File: "chart/"}}
	}
	for _, f := range objs.check() {
		file, line := serviceFile(svc), 0
		if p, l, ok := findLeaf(leaves, f.Value, f.Key, f.Scope); ok {
			file, line = lineOf(files, l.file, p)
		}
		fs = append(fs, Finding{Severity: f.Severity, Service: svc, Env: env, Check: f.Check, Source: SourceCutover,
			Object: f.Object, Message: f.Message, File: file, Line: line})
	}
	scored, err := KubeScore(manifests)
	if err != nil {
		return append(fs, Finding{Severity: Error, Service: svc, Env: env, Check: CheckRender, Source: SourceKubeScore,
			Message: err.Error(), File: "chart/"})
	}
	for _, k := range scored {
		// cutover's image check says the same with the file to change.
		if k.Check == "container-image-tag" {
			continue
		}
		sev := Warning
		if k.Grade == "CRITICAL" {
			sev = Error
		}
		fs = append(fs, Finding{Severity: sev, Service: svc, Env: env, Check: k.Check, Source: SourceKubeScore,
			Object: k.Object, Message: k.Message, File: serviceFile(svc)})
	}
	return fs
}

func unfilledFindings(svc string, in map[string][]string, nEnvs int, files map[string]valuesFile) []Finding {
	var out []Finding
	for _, k := range sortedKeys(in) {
		parts := strings.SplitN(k, "\x00", 3)
		path, origin, value := parts[0], parts[1], parts[2]
		file, line := lineOf(files, origin, path)
		_, section := splitOrigin(origin)
		what := "is empty"
		if value != "" {
			what = fmt.Sprintf("is still the placeholder %q", value)
		}
		where := ""
		if section != "" {
			where = " under " + section
		}
		msg := fmt.Sprintf("%s%s %s: the chart refuses to render until it is filled (see the # FILL comment above it)", path, where, what)
		envs := in[k]
		if len(envs) == nEnvs {
			out = append(out, Finding{Severity: Error, Service: svc, Check: CheckUnfilled, Source: SourceCutover, Message: msg, File: file, Line: line})
			continue
		}
		for _, e := range envs {
			out = append(out, Finding{Severity: Error, Service: svc, Env: e, Check: CheckUnfilled, Source: SourceCutover, Message: msg, File: file, Line: line})
		}
	}
	return out
}
