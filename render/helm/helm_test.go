package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// A case is a directory under testdata:
//
//	services.json   the services, as the service model's JSON
//	options.json    render.Options (optional; else region eu-west-1, team payments)
//	fill.json       {service: {fill name: value}}: what the user fills
//	                before rendering (optional)
//	out/            golden: the whole tree Render writes
//	rendered/<service>/<env>.yaml  golden: Template's output, after filling
//	rendered/<service>/unfilled.txt golden: the error while fills are empty
//	findings.txt    golden: Findings of every service

func caseNames(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if _, err := os.Stat(filepath.Join("testdata", e.Name(), "services.json")); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

func loadServices(t testing.TB, path string) []*service.Service {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var svcs []*service.Service
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&svcs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return svcs
}

func loadOptions(t testing.TB, dir string) render.Options {
	t.Helper()
	opts := render.Options{Region: "eu-west-1", Team: "payments"}
	data, err := os.ReadFile(filepath.Join(dir, "options.json"))
	if errors.Is(err, os.ErrNotExist) {
		return opts
	}
	if err != nil {
		t.Fatal(err)
	}
	opts = render.Options{}
	if err := json.Unmarshal(data, &opts); err != nil {
		t.Fatal(err)
	}
	return opts
}

func loadFills(t testing.TB, dir string) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "fill.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]map[string]string
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// fillValues sets fill.<name> in a service values file as a user would,
// keeping the rest of the file as it is.
func fillValues(t testing.TB, data []byte, fills map[string]string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	var fill *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "fill" {
			fill = root.Content[i+1]
		}
	}
	if fill == nil {
		t.Fatal("no fill: in the values file")
	}
	fill.Style = 0
	for _, name := range sortedKeys(fills) {
		set := false
		for i := 0; i+1 < len(fill.Content); i += 2 {
			if fill.Content[i].Value == name {
				fill.Content[i+1] = str(fills[name])
				set = true
			}
		}
		if !set {
			t.Fatalf("fill.%s is not in the values file", name)
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func renderCase(t testing.TB, dir string) ([]*service.Service, render.Options, render.Tree) {
	t.Helper()
	svcs := loadServices(t, filepath.Join(dir, "services.json"))
	opts := loadOptions(t, dir)
	tree := render.Tree{}
	if err := Render(svcs, opts, tree); err != nil {
		t.Fatal(err)
	}
	return svcs, opts.Defaults(), tree
}

func TestRender(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			svcs, opts, tree := renderCase(t, dir)
			golden.AssertDir(t, filepath.Join(dir, "out"), tree)

			// The cases carry no importer report: what is there, Render added.
			var findings bytes.Buffer
			for _, s := range svcs {
				for _, f := range s.Report.Findings {
					findings.WriteString(f.String() + "\n")
				}
			}
			golden.Assert(t, filepath.Join(dir, "findings.txt"), findings.Bytes())

			fills := loadFills(t, dir)
			rendered := map[string][]byte{}
			for _, s := range svcs {
				if f := fills[s.Name]; len(f) > 0 {
					// Unfilled, every environment fails naming a value to fill.
					_, err := TemplateTree(context.Background(), tree, s.Name, opts.Envs[0])
					var ie *source.InputError
					if !errors.As(err, &ie) {
						t.Fatalf("%s unfilled: want an InputError, got %v", s.Name, err)
					}
					if ie.File != ServiceValuesFile(s.Name) || ie.Line == 0 || !strings.HasPrefix(ie.Field, "fill.") {
						t.Errorf("%s unfilled: the error does not name the fill value's file, line and field: %v", s.Name, err)
					}
					rendered[s.Name+"/unfilled.txt"] = []byte(err.Error() + "\n")
					p := ServiceValuesFile(s.Name)
					tree[p] = fillValues(t, tree[p], f)
				}
				for _, env := range opts.Envs {
					out, err := TemplateTree(context.Background(), tree, s.Name, env)
					if err != nil {
						t.Fatalf("%s in %s: %v", s.Name, env, err)
					}
					objs := decodeManifests(t, loadCRDs(t), out)
					if len(objs) == 0 {
						t.Errorf("%s in %s: nothing rendered", s.Name, env)
					}
					rendered[s.Name+"/"+env+".yaml"] = out
				}
			}
			golden.AssertDir(t, filepath.Join(dir, "rendered"), rendered)
		})
	}
}

// TestRenderIsDeterministic renders every case twice, from services
// decoded afresh, and wants the same bytes: maps must not leak their order.
func TestRenderIsDeterministic(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			svcs, _, a := renderCase(t, dir)
			_, _, b := renderCase(t, dir)
			if !equalTrees(a, b) {
				t.Fatal("two renders of the same services differ")
			}
			for _, s := range svcs {
				for _, env := range []string{"dev", "prod"} {
					if _, ok := a[EnvValuesFile(env)]; !ok {
						continue
					}
					x, errX := TemplateTree(context.Background(), a, s.Name, env)
					y, errY := TemplateTree(context.Background(), b, s.Name, env)
					if (errX == nil) != (errY == nil) || !bytes.Equal(x, y) {
						t.Errorf("%s in %s: two templates differ", s.Name, env)
					}
				}
			}
		})
	}
}

func equalTrees(a, b render.Tree) bool {
	if len(a) != len(b) {
		return false
	}
	for p, x := range a {
		if !bytes.Equal(x, b[p]) {
			return false
		}
	}
	return true
}

// TestTemplateFromDisk writes a layout with render.WriteDir and renders it
// back with Template, Services and Envs, as `cutover lint` does.
func TestTemplateFromDisk(t *testing.T) {
	svcs := append(loadServices(t, "testdata/server-routes/services.json"), loadServices(t, "testdata/worker-sqs/services.json")...)
	tree := render.Tree{}
	if err := Render(svcs, render.Options{Region: "eu-west-1", Envs: []string{"qa", "live"}}, tree); err != nil {
		t.Fatal(err)
	}
	// Each environment names its own role: the user fills the roles of
	// the environments that are not production.
	for _, s := range svcs {
		if len(s.Values) > 0 {
			p := ServiceValuesFile(s.Name)
			fills := map[string]string{}
			for _, v := range s.Values {
				fills[v.Name] = "arn:aws:iam::210987654321:role/" + s.Name + "-" + v.Name
			}
			tree[p] = fillValues(t, tree[p], fills)
		}
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := render.WriteDir(dir, tree); err != nil {
		t.Fatal(err)
	}
	got, err := Services(dir)
	if err != nil || strings.Join(got, ",") != "orders-api,payment-events" {
		t.Fatalf("Services = %v, %v", got, err)
	}
	envs, err := Envs(dir)
	if err != nil || strings.Join(envs, ",") != "live,qa" {
		t.Fatalf("Envs = %v, %v", envs, err)
	}
	for _, s := range got {
		for _, env := range envs {
			disk, err := Template(context.Background(), dir, s, env)
			if err != nil {
				t.Fatal(err)
			}
			mem, err := TemplateTree(context.Background(), tree, s, env)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(disk, mem) {
				t.Errorf("%s in %s: Template and TemplateTree differ", s, env)
			}
			if !bytes.Contains(disk, []byte("namespace: platform-"+env+"\n")) {
				t.Errorf("%s in %s: not in the environment's namespace", s, env)
			}
		}
	}
	if _, err := Template(context.Background(), dir, "nope", "qa"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "orders-api, payment-events") {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := Template(context.Background(), dir, "orders-api", "prod"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "live, qa") {
		t.Errorf("unknown environment: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Template(ctx, dir, "orders-api", "qa"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// TestEnvironmentScaling pins what the environment files do to replica
// counts: production keeps at least two, the first environment at most two.
func TestEnvironmentScaling(t *testing.T) {
	_, _, tree := renderCase(t, "testdata/server-routes")
	get := func(env string) []object {
		out, err := TemplateTree(context.Background(), tree, "orders-api", env)
		if err != nil {
			t.Fatal(err)
		}
		return decodeManifests(t, loadCRDs(t), out)
	}
	hpa := func(objs []object) (int32, int32) {
		for _, o := range objs {
			if o.gvk.Kind == "HorizontalPodAutoscaler" {
				var s struct {
					Spec struct{ MinReplicas, MaxReplicas int32 }
				}
				b, _ := json.Marshal(o.raw)
				_ = json.Unmarshal(b, &s)
				return s.Spec.MinReplicas, s.Spec.MaxReplicas
			}
		}
		t.Fatal("no HPA")
		return 0, 0
	}
	if min, max := hpa(get("dev")); min != 2 || max != 2 {
		t.Errorf("dev HPA %d..%d, want 2..2 (bounded by dev's max 2)", min, max)
	}
	if min, max := hpa(get("prod")); min != 2 || max != 20 {
		t.Errorf("prod HPA %d..%d, want 2..20", min, max)
	}

	// A service override for one environment wins, false and 0 included.
	p := ServiceValuesFile("orders-api")
	tree[p] = bytes.Replace(tree[p], []byte("environments: {}"), []byte("environments:\n  prod:\n    pdb:\n      enabled: false\n    autoscaling:\n      maxReplicas: 40\n    replicaBounds:\n      min: 0"), 1)
	prod := get("prod")
	if min, max := hpa(prod); min != 2 || max != 40 {
		t.Errorf("prod HPA with override %d..%d, want 2..40", min, max)
	}
	for _, o := range prod {
		if o.gvk.Kind == "PodDisruptionBudget" {
			t.Error("prod override pdb.enabled: false ignored")
		}
	}
	hasPDB := false
	for _, o := range get("staging") {
		hasPDB = hasPDB || o.gvk.Kind == "PodDisruptionBudget"
	}
	if !hasPDB {
		t.Error("the prod override leaked into staging")
	}
	// A service stopped on purpose stays stopped where the minimum is 2.
	tree[p] = bytes.Replace(tree[p], []byte("    autoscaling:\n      maxReplicas: 40"), []byte("    replicas: 0\n    autoscaling:\n      enabled: false"), 1)
	for _, o := range get("prod") {
		if d, ok := o.typ.(*appsv1.Deployment); ok && (d.Spec.Replicas == nil || *d.Spec.Replicas != 0) {
			t.Errorf("a stopped service gets %v replicas in prod", d.Spec.Replicas)
		}
	}
	eff, err := effectiveFromTree(tree, "orders-api", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if eff["pdb"].(map[string]any)["enabled"] != false {
		t.Errorf("EffectiveValues ignores the overlay: %v", eff["pdb"])
	}
}

func effectiveFromTree(tree render.Tree, svc, env string) (map[string]any, error) {
	v, err := loadValues(treeLayout(tree), svc, env)
	if err != nil {
		return nil, err
	}
	return v.effective, nil
}

// TestBadValuesNameFileAndLine: errors in values files a user edits name
// the file, the line and the value.
func TestBadValuesNameFileAndLine(t *testing.T) {
	_, _, tree := renderCase(t, "testdata/server-routes")
	svcFile := ServiceValuesFile("orders-api")
	cases := []struct {
		name      string
		file      string
		edit      func([]byte) []byte
		wantFile  string
		wantField string
		wantMsg   string
	}{
		{
			name: "schema type",
			file: svcFile,
			edit: func(b []byte) []byte {
				return bytes.Replace(b, []byte("terminationGracePeriodSeconds: 45"), []byte("terminationGracePeriodSeconds: soon"), 1)
			},
			wantFile:  svcFile,
			wantField: "terminationGracePeriodSeconds",
			wantMsg:   "want integer",
		},
		{
			name:      "misspelt key",
			file:      EnvValuesFile("prod"),
			edit:      func(b []byte) []byte { return append(b, []byte("replicaBound:\n  min: 3\n")...) },
			wantFile:  EnvValuesFile("prod"),
			wantField: "",
			wantMsg:   "replicaBound",
		},
		{
			name: "overlay type",
			file: svcFile,
			edit: func(b []byte) []byte {
				return bytes.Replace(b, []byte("environments: {}"), []byte("environments:\n  prod:\n    replicas: many"), 1)
			},
			wantFile:  svcFile,
			wantField: "environments.prod.replicas",
			wantMsg:   "want integer",
		},
		{
			name:     "syntax",
			file:     BaseValuesFile,
			edit:     func(b []byte) []byte { return append(b, []byte("pdb: [unclosed\n")...) },
			wantFile: BaseValuesFile,
		},
		{
			name: "region unset",
			file: EnvValuesFile("prod"),
			edit: func(b []byte) []byte {
				return bytes.Replace(b, []byte("region: eu-west-1"), []byte("region: \"\""), 1)
			},
			wantFile: EnvValuesFile("prod"),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := render.Tree{}
			for k, v := range tree {
				tr[k] = v
			}
			svc := "orders-api"
			if c.name == "region unset" {
				// Region is only required where it is used: by a service
				// with secrets and queues.
				_, _, tr = renderCase(t, "testdata/worker-sqs")
				svc = "payment-events"
				c.wantField = "aws.region"
				c.wantMsg = "not set"
			}
			tr[c.file] = c.edit(tr[c.file])
			_, err := TemplateTree(context.Background(), tr, svc, "prod")
			var ie *source.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want an InputError, got %v", err)
			}
			if ie.File != c.wantFile || (c.name != "region unset" && ie.Line == 0) {
				t.Errorf("error names %s:%d, want %s and a line: %v", ie.File, ie.Line, c.wantFile, err)
			}
			if c.wantField != "" && ie.Field != c.wantField {
				t.Errorf("error names field %q, want %q: %v", ie.Field, c.wantField, err)
			}
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("error %q does not say %q", err, c.wantMsg)
			}
		})
	}
}

// TestFloatingTagsKeptAsGiven: untagged and latest images are rendered as
// the input gave them (convert reports them), and pulled on every start
// even where base.yaml says IfNotPresent.
func TestFloatingTagsKeptAsGiven(t *testing.T) {
	s := &service.Service{Name: "a", Containers: []service.Container{
		{Name: "x", Image: "nginx"},
		{Name: "y", Image: "registry:5000/team/app:latest"},
		{Name: "z", Image: "registry:5000/team/app:1.2"},
		{Name: "w", Image: "app@sha256:abc"},
	}}
	tree := render.Tree{}
	if err := Render([]*service.Service{s}, render.Options{}, tree); err != nil {
		t.Fatal(err)
	}
	tree[BaseValuesFile] = bytes.Replace(tree[BaseValuesFile], []byte("imagePullPolicy: Always"), []byte("imagePullPolicy: IfNotPresent"), 1)
	out, err := TemplateTree(context.Background(), tree, "a", "dev")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"image: \"nginx\"\n          imagePullPolicy: Always",
		"image: \"registry:5000/team/app:latest\"\n          imagePullPolicy: Always",
		"image: \"registry:5000/team/app:1.2\"\n          imagePullPolicy: IfNotPresent",
		"image: \"app@sha256:abc\"\n          imagePullPolicy: IfNotPresent",
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("no %q in\n%s", w, out)
		}
	}
}

// TestRenderCompletesTheModelOnce: the values Render needs filled join
// svc.Values and its findings join svc.Report, once however often it runs.
func TestRenderCompletesTheModelOnce(t *testing.T) {
	svcs := loadServices(t, "testdata/secrets/services.json")
	first := render.Tree{}
	if err := Render(svcs, render.Options{Region: "eu-west-1"}, first); err != nil {
		t.Fatal(err)
	}
	s := svcs[0]
	var names []string
	for _, v := range s.Values {
		names = append(names, v.Name)
	}
	// The key of a secret the input left unrendered, and one role per
	// environment: production's, and one of each other environment's own
	// account.
	if strings.Join(names, " ") != "secretSigningKey roleArn roleArnDev roleArnStaging" {
		t.Fatalf("Values after Render: %+v", s.Values)
	}
	if sa := s.ServiceAccount; sa == nil || sa.RoleValue != "roleArn" {
		t.Errorf("the service reads secrets but has no ServiceAccount with the role to fill: %+v", sa)
	}
	if s.Report.Count(service.Fill) != 4 {
		t.Errorf("the report has %d fills, want 4", s.Report.Count(service.Fill))
	}
	n := len(s.Report.Findings)
	again := render.Tree{}
	if err := Render(svcs, render.Options{Region: "eu-west-1"}, again); err != nil {
		t.Fatal(err)
	}
	if len(s.Values) != 4 || len(s.Report.Findings) != n {
		t.Errorf("a second Render changed the model: %d values, %d findings (was %d)", len(s.Values), len(s.Report.Findings), n)
	}
	if !equalTrees(first, again) {
		t.Error("a second Render of the same services writes other files")
	}
}

func TestRenderRefusesDuplicatesAndInvalid(t *testing.T) {
	svcs := loadServices(t, "testdata/job/services.json")
	if err := Render(append(svcs, svcs[0]), render.Options{}, render.Tree{}); err == nil {
		t.Error("two services of one name rendered")
	}
	bad := *svcs[0]
	bad.Containers = nil
	if err := Render([]*service.Service{&bad}, render.Options{}, render.Tree{}); err == nil {
		t.Error("a service without containers rendered")
	}
}

// TestFillRejectsPlaceholders: a fill value still holding the input's
// placeholder fails like an empty one, naming the value and its line.
func TestFillRejectsPlaceholders(t *testing.T) {
	_, _, tree := renderCase(t, "testdata/fill")
	p := ServiceValuesFile("notifier")
	base := tree[p]
	for _, v := range []string{"", "<IMAGE1_NAME>", "${IMAGE}", "#{Image}", "{{image}}", "__IMAGE__", "$IMAGE", "%IMAGE%"} {
		tree[p] = fillValues(t, base, map[string]string{"image": v, "metrics-image": "m:1", "smtp-host": "smtp"})
		_, err := TemplateTree(context.Background(), tree, "notifier", "prod")
		var ie *source.InputError
		if !errors.As(err, &ie) || ie.Field != "fill.image" || ie.File != p || ie.Line == 0 {
			t.Errorf("fill.image %q: want an InputError naming fill.image in %s, got %v", v, p, err)
		}
	}
	for _, v := range []string{"registry/notifier:1", "<b>bold</b>:1", "x${Y}", "registry/__x__:1", "$5"} {
		tree[p] = fillValues(t, base, map[string]string{"image": v, "metrics-image": "m:1", "smtp-host": "smtp"})
		if _, err := TemplateTree(context.Background(), tree, "notifier", "prod"); err != nil {
			t.Errorf("fill.image %q: %v", v, err)
		}
	}
}

// TestAliasBombIsRefused: a values file of nested aliases (a "billion
// laughs") is refused quickly instead of expanded.
func TestAliasBombIsRefused(t *testing.T) {
	_, _, tree := renderCase(t, "testdata/job")
	var b strings.Builder
	b.WriteString("a: &a [x, x, x, x, x, x, x, x, x, x]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(n + ": &" + n + " [")
		for i := 0; i < 10; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	tree[ServiceValuesFile("db-migrate")] = []byte(b.String())
	done := make(chan error, 1)
	go func() {
		_, err := TemplateTree(context.Background(), tree, "db-migrate", "dev")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("an alias bomb rendered")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("an alias bomb is still being expanded after 20s")
	}
}

// A value the input gives per environment (a Serverless value that
// depends on the stage) was one value for every environment, the dev
// stage's: each environment now takes its own from environments.<env>,
// and one the input gives none refuses to render until it is filled.
func TestPerEnvironmentFillValues(t *testing.T) {
	dir := "testdata/fill"
	svcs := loadServices(t, filepath.Join(dir, "services.json"))
	for i := range svcs[0].Values {
		if v := &svcs[0].Values[i]; v.Name == "smtp-host" {
			v.Default = ""
			v.PerEnv = map[string]string{"prod": "smtp.prod.example.com"}
		}
	}
	opts := loadOptions(t, dir)
	tree := render.Tree{}
	if err := Render(svcs, opts, tree); err != nil {
		t.Fatal(err)
	}
	p := ServiceValuesFile("notifier")
	tree[p] = fillValues(t, tree[p], map[string]string{"image": "registry.example.com/notifier:2.0.1", "metrics-image": "prom/statsd-exporter:v0.27.1"})
	out, err := TemplateTree(context.Background(), tree, "notifier", "prod")
	if err != nil {
		t.Fatalf("prod: %v", err)
	}
	if !bytes.Contains(out, []byte("smtp.prod.example.com")) {
		t.Errorf("prod does not render its own SMTP_HOST:\n%s", out)
	}
	_, err = TemplateTree(context.Background(), tree, "notifier", "dev")
	var ie *source.InputError
	if !errors.As(err, &ie) || ie.Field != "fill.smtp-host" {
		t.Errorf("dev, which the input gives no value: want an InputError naming fill.smtp-host, got %v", err)
	}
}
