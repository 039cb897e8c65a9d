package lint

import (
	"errors"
	"strings"
	"testing"
	"time"

	yaml3 "gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

func mustValues(t testing.TB, path, data string) valuesFile {
	t.Helper()
	v, err := parseValues(path, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// envSet builds the flattened values of each environment from a base, the
// env files and one service file.
func envSet(t testing.TB, base string, envs map[string]string, order []string, svc string) ([]envValues, []string, map[string]valuesFile) {
	t.Helper()
	b := mustValues(t, baseFile, base)
	s := mustValues(t, serviceFile("api"), svc)
	keys, err := environmentKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []envValues
	files := map[string]valuesFile{b.Path: b, s.Path: s}
	for _, e := range order {
		ef := mustValues(t, envFile(e), envs[e])
		files[ef.Path] = ef
		tr := effective(b, ef, s, e)
		ev := envValues{Env: e, Leaves: map[string]leaf{}, Specific: map[string]bool{envFile(e): true, serviceFile("api") + envSection(e): true}}
		flatten(tr, "", ev.Leaves)
		out = append(out, ev)
	}
	return out, keys, files
}

const driftBase = `
environmentKeys: [environment, namespace, replicas, autoscaling.minReplicas, resources]
image: {pullPolicy: IfNotPresent}
pdb: {enabled: true, maxUnavailable: 1}
`

func TestDrift(t *testing.T) {
	envs3 := []string{"dev", "staging", "prod"}
	for _, tc := range []struct {
		name string
		envs map[string]string
		svc  string
		want []string // Finding.String() of each finding
	}{
		{
			name: "declared keys differ freely",
			envs: map[string]string{
				"dev":     "environment: dev\nnamespace: platform-dev\nreplicas: 1\nautoscaling: {minReplicas: 1}\nresources: {cpu: 100m}",
				"staging": "environment: staging\nnamespace: platform-staging\nreplicas: 2\nautoscaling: {minReplicas: 2}",
				"prod":    "environment: prod\nnamespace: platform-prod\nreplicas: 3\nautoscaling: {minReplicas: 3}\nresources: {cpu: '1', memory: 1Gi}",
			},
		},
		{
			name: "an undeclared value set in prod only",
			envs: map[string]string{"dev": "environment: dev", "staging": "environment: staging", "prod": "environment: prod\nimage: {pullPolicy: Always}"},
			want: []string{`ERROR api/prod: drift: image.pullPolicy is "Always" here but "IfNotPresent" in dev, "IfNotPresent" in staging; it is not an environment key: set it alike for every environment, or list it under environmentKeys in values/base.yaml (values/env/prod.yaml:2)`},
		},
		{
			name: "a key only one environment has",
			envs: map[string]string{"dev": "debug: {pprof: true}", "staging": "", "prod": ""},
			want: []string{`ERROR api/dev: drift: debug.pprof is true here but unset in staging, unset in prod; it is not an environment key: set it alike for every environment, or list it under environmentKeys in values/base.yaml (values/env/dev.yaml:1)`},
		},
		{
			name: "two environments differ from each other: both blamed",
			envs: map[string]string{"dev": "pdb: {maxUnavailable: 2}", "staging": "", "prod": "pdb: {maxUnavailable: 0}"},
			want: []string{
				`ERROR api/dev: drift: pdb.maxUnavailable is 2 here but 1 in staging, 0 in prod; it is not an environment key: set it alike for every environment, or list it under environmentKeys in values/base.yaml (values/env/dev.yaml:1)`,
				`ERROR api/prod: drift: pdb.maxUnavailable is 0 here but 2 in dev, 1 in staging; it is not an environment key: set it alike for every environment, or list it under environmentKeys in values/base.yaml (values/env/prod.yaml:1)`,
			},
		},
		{
			name: "the service file overrides an environment's drift for every environment",
			envs: map[string]string{"dev": "", "staging": "", "prod": "image: {pullPolicy: Always}"},
			svc:  "image: {pullPolicy: Never}",
		},
		{
			name: "a service's environments section is environment-specific",
			envs: map[string]string{"dev": "", "staging": "", "prod": ""},
			svc:  "image: {repository: r/api}\nenvironments:\n  prod:\n    image: {repository: r/api-hotfix}\n    replicas: 4\n",
			want: []string{`ERROR api/prod: drift: image.repository is "r/api-hotfix" here (set under environments.prod) but "r/api" in dev, "r/api" in staging; it is not an environment key: set it alike for every environment, or list it under environmentKeys in values/base.yaml (values/services/api.yaml:4)`},
		},
		{
			name: "null deletes a key, as Helm does",
			envs: map[string]string{"dev": "", "staging": "", "prod": "pdb: {enabled: null}"},
			want: []string{`ERROR api/prod: drift: pdb.enabled is unset here but true in dev, true in staging; it is not an environment key: set it alike for every environment, or list it under environmentKeys in values/base.yaml (values/env/prod.yaml:1)`},
		},
		{
			name: "a map replaced by a scalar",
			envs: map[string]string{"dev": "", "staging": "", "prod": "image: none"},
			want: []string{
				`ERROR api/prod: drift: image is "none" here but unset in dev, unset in staging; it is not an environment key: set it alike for every environment, or list it under environmentKeys in values/base.yaml (values/env/prod.yaml:1)`,
			},
		},
		{
			name: "lists compare whole",
			envs: map[string]string{"dev": "tolerations: [{key: a}]", "staging": "tolerations: [{key: a}]", "prod": "tolerations: [{key: a}]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			envs, keys, files := envSet(t, driftBase, tc.envs, envs3, tc.svc)
			got := drift("api", envs, keys, baseFile, files)
			var lines []string
			for _, f := range got {
				lines = append(lines, f.String())
			}
			if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestUnfilled(t *testing.T) {
	svc := mustValues(t, serviceFile("api"), `
fill:
  # FILL: the task definition had a CI placeholder
  image: "<IMAGE1_NAME>"
  roleArn: ""
  dbHost: db.internal
  queue: "${QUEUE_URL}"
  token: "#{Token}"
  other: null
`)
	tr := effective(mustValues(t, baseFile, ""), mustValues(t, envFile("dev"), ""), svc, "dev")
	var got []string
	for _, u := range unfilled(tr) {
		got = append(got, u.Path+"="+u.Value)
	}
	want := "fill.image=<IMAGE1_NAME> fill.other= fill.queue=${QUEUE_URL} fill.roleArn= fill.token=#{Token}"
	if strings.Join(got, " ") != want {
		t.Errorf("unfilled = %q, want %q", strings.Join(got, " "), want)
	}
}

func TestValuesErrors(t *testing.T) {
	_, err := parseValues("values/env/prod.yaml", []byte("a: 1\nb: [\n  c: d\n"))
	var ie *source.InputError
	if !errors.As(err, &ie) || ie.File != "values/env/prod.yaml" || ie.Line == 0 {
		t.Errorf("bad YAML: err = %#v, want an InputError with file and line", err)
	}
	for _, tc := range []struct{ base, field string }{
		{"environmentKeys: replicas", "environmentKeys"},
		{"environmentKeys: [replicas, 3]", "environmentKeys[1]"},
		{"environmentKeys: [replicas, '']", "environmentKeys[1]"},
	} {
		_, err := environmentKeys(mustValues(t, baseFile, tc.base))
		if !errors.As(err, &ie) || ie.Field != tc.field || ie.File != baseFile {
			t.Errorf("%s: err = %v, want an InputError on %s", tc.base, err, tc.field)
		}
	}
}

// FuzzValues feeds arbitrary values files through parsing, merging,
// flattening, drift and the unfilled check: none may panic.
func FuzzValues(f *testing.F) {
	f.Add(driftBase, "environment: prod\nimage: {pullPolicy: Always}", "fill: {image: ''}\nenvironments: {prod: {replicas: 2}}")
	f.Add("environmentKeys: [a]\na: {b: 1}", "a: null", "environments: 3")
	f.Add("", "", "")
	f.Add("environmentKeys: 1", "x: [1, {y: 2}]", "fill: [a]")
	f.Add("a: {}", "a: {b: {}}", "environments: {prod: null, dev: {a: {b: c}}}")
	f.Fuzz(func(t *testing.T, base, env, svc string) {
		b, err := parseValues(baseFile, []byte(base))
		if err != nil {
			return
		}
		keys, _ := environmentKeys(b)
		e, err := parseValues(envFile("prod"), []byte(env))
		if err != nil {
			return
		}
		s, err := parseValues(serviceFile("x"), []byte(svc))
		if err != nil {
			return
		}
		var envs []envValues
		for _, name := range []string{"dev", "prod"} {
			ev := e
			if name == "dev" {
				ev = valuesFile{Path: envFile("dev"), Data: map[string]any{}}
			}
			tr := effective(b, ev, s, name)
			vals := envValues{Env: name, Leaves: map[string]leaf{}, Specific: map[string]bool{envFile(name): true, serviceFile("x") + envSection(name): true}}
			flatten(tr, "", vals.Leaves)
			envs = append(envs, vals)
			unfilled(tr)
		}
		for _, f := range drift("x", envs, keys, baseFile, map[string]valuesFile{b.Path: b, e.Path: e, s.Path: s}) {
			if f.Env == "" || f.File == "" {
				t.Fatalf("drift finding without env or file: %+v", f)
			}
		}
	})
}

// Indexing lines once followed YAML aliases, which a billion-laughs file
// turns into 10^9 visits; parsing must stay fast whatever Helm's YAML
// library then makes of the file.
func TestValuesAliasBombIsFast(t *testing.T) {
	doc := "a: &a {x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7, s: 8, r: 9}\n"
	prev := "a"
	for i := 0; i < 9; i++ {
		name := string(rune('b' + i))
		doc += name + ": &" + name + " {"
		var keys []string
		for j := 0; j < 9; j++ {
			keys = append(keys, string(rune('a'+j))+": *"+prev)
		}
		doc += strings.Join(keys, ", ") + "}\n"
		prev = name
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = parseValues("values/base.yaml", []byte(doc))
		var root yaml3.Node
		if err := yaml3.Unmarshal([]byte(doc), &root); err != nil {
			t.Error(err)
			return
		}
		indexLines(map[string]int{}, "", root.Content[0], 0)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("parsing an alias bomb took more than 5s")
	}
}
