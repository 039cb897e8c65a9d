package compose

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

var (
	// Names that hold where a secret is, not the secret.
	notSecretRe = regexp.MustCompile(`(?i)(_file|_path|_dir|_url_?template|_arn|_id|_name|_ttl|_timeout|_expiry|_expires|_length|_rounds|_enabled|_header)$`)
)

// secretLooking reports whether an environment variable holds a secret,
// by its name (DB_PASSWORD, STRIPE_API_KEY) or its value (a URL with a
// password, a webhook URL: source.SecretURL); "" is a value compose takes
// from the shell, so a webhook's name says enough. Such values are never
// copied into the output: the variable becomes a reference to AWS Secrets
// Manager.
func secretLooking(name, value string) bool {
	if source.SecretValue(name, value) {
		return true
	}
	if strings.HasPrefix(value, "/run/secrets/") && !strings.ContainsAny(value, " \t\n") {
		// DATABASE_PASSWORD=/run/secrets/db-password: where compose
		// mounts a secret, a path, not the secret.
		return false
	}
	if notSecretRe.MatchString(name) && !strings.HasSuffix(strings.ToLower(name), "_key_id") {
		return false
	}
	return source.SecretName(name)
}

// withheldIn reports whether s holds a secret the interpolator withheld.
func withheldIn(ip *interpolator, s string) bool {
	_, secret := ip.split(sentinelVars(s))
	return len(secret) > 0
}

// secretVarsIn returns the set, secret-looking variables a raw env file
// line interpolates ($DB_PASSWORD, ${API_TOKEN:-x}) into value, once
// each: one quoted as a literal ('$API_TOKEN') is not in the value.
func (cv *conv) secretVarsIn(raw, value string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range varRefRe.FindAllStringSubmatch(raw, -1) {
		if v, ok := cv.pr.env[m[1]]; ok && v != "" && !seen[m[1]] && strings.Contains(value, v) && secretLooking(m[1], v) {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// secretRef makes env var name a reference to a Secrets Manager entry:
// one secret per service (<project>/<service>), one JSON property per
// variable, which is how External Secrets reads it.
func (cv *conv) secretRef(name string) string {
	key := cv.pr.name + "/" + cv.svc.Name
	for _, s := range cv.svc.Secrets {
		if s.Name == name {
			return name
		}
	}
	cv.svc.Secrets = append(cv.svc.Secrets, service.Secret{Name: name, Source: service.SecretsManager, Key: key, Property: name})
	return name
}

func (cv *conv) secretMsg(name string) string {
	return fmt.Sprintf("looks like a secret: the value was not copied; store it in AWS Secrets Manager secret %s/%s, property %s (the ExternalSecret reads it from there)", cv.pr.name, cv.svc.Name, name)
}

// environment maps environment:, in input order.
func (cv *conv) environment(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig, main bool) {
	if len(sc.Environment) == 0 {
		t.Use("environment")
		return
	}
	paths, order := t.keyed("environment", entryKey)
	var rest []string
	for k := range sc.Environment {
		if _, ok := paths[k]; !ok {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	order = append(order, rest...)

	for _, key := range order {
		v, ok := sc.Environment[key]
		if !ok {
			continue
		}
		it, found := paths[key]
		t, field := t.at(it, found, "environment")
		target := fmt.Sprintf("%s.env[%s]", cref, key)
		switch {
		case v == nil:
			if secretLooking(key, "") {
				c.Env = append(c.Env, service.EnvVar{Name: key, Secret: cv.secretRef(key)})
				t.Warn(field, target+" ← Secret", "passed through from the shell that ran compose; "+cv.secretMsg(key))
				continue
			}
			if val, ok := cv.pr.env[key]; ok {
				// compose resolves a bare name from .env and the
				// environment it runs in (with --use-env).
				if main {
					cv.config(key, val)
					c.Env = append(c.Env, service.EnvVar{Name: key, ConfigKey: key})
					t.Mapped(field, target+" ← ConfigMap (value from .env or, with --use-env, the environment)")
				} else {
					c.Env = append(c.Env, service.EnvVar{Name: key, Value: strings.ReplaceAll(val, "$(", "$$(")})
					t.Mapped(field, target+" (value from .env or, with --use-env, the environment)")
				}
				continue
			}
			ref := cv.svc.AddValue(service.FillKey("env", key), "", "compose passed "+key+" through from the shell that ran it")
			c.Env = append(c.Env, service.EnvVar{Name: key, ValueRef: ref})
			t.Fill(field, "values fill."+ref, "no value: compose took it from the shell that ran it; fill it")
		case secretLooking(key, *v):
			c.Env = append(c.Env, service.EnvVar{Name: key, Secret: cv.secretRef(key)})
			t.Warn(field, target+" ← Secret", cv.secretMsg(key))
		case withheldIn(cv.pr.ip, *v):
			// FOO: ${DB_PASSWORD}: the value holds a secret.
			c.Env = append(c.Env, service.EnvVar{Name: key, Secret: cv.secretRef(key)})
			t.Warn(field, target+" ← Secret", fmt.Sprintf("uses %s, which %s", varList(sentinelVars(*v)), cv.secretMsg(key)))
		case hasSentinel(*v):
			vars := sentinelVars(*v)
			name := key
			def := restoreVars(*v)
			if *v == sentinel(vars[0]) {
				name, def = vars[0], ""
			}
			reason := fmt.Sprintf("%s uses %s, which is not set", key, varList(vars))
			if u := cv.pr.ip.unset[vars[0]]; u != nil && u.Message != "" {
				reason += ": " + u.Message
			}
			ref := cv.svc.AddValue(service.FillKey("env", name), def, reason)
			c.Env = append(c.Env, service.EnvVar{Name: key, ValueRef: ref})
			t.Fill(field, "values fill."+ref, fmt.Sprintf("uses %s, which is not set: fill it", varList(vars)))
		case main:
			cv.config(key, *v)
			c.Env = append(c.Env, service.EnvVar{Name: key, ConfigKey: key})
			t.Mapped(field, target+" ← ConfigMap")
		default:
			if have, ok := cv.svc.Config[key]; ok && have == *v {
				// The main container has the same variable: share the key.
				c.Env = append(c.Env, service.EnvVar{Name: key, ConfigKey: key})
				t.Mapped(field, target+" ← ConfigMap")
				continue
			}
			c.Env = append(c.Env, service.EnvVar{Name: key, Value: strings.ReplaceAll(*v, "$(", "$$(")})
			t.Mapped(field, target)
		}
	}
}

// config sets a ConfigMap key; a later, different value for the same key
// (environment overrides env_file) wins.
func (cv *conv) config(key, value string) {
	if cv.svc.Config == nil {
		cv.svc.Config = map[string]string{}
	}
	cv.svc.Config[key] = value
}

// envFiles maps env_file: each file's keys become ConfigMap keys the
// container loads with envFrom. The file is read beside the compose file;
// one that is missing becomes a value to fill, not an error.
func (cv *conv) envFiles(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig, main bool) {
	if len(sc.EnvFiles) == 0 {
		t.Use("env_file")
		return
	}
	// The raw entries, for their paths as written and their lines.
	type rawEntry struct {
		file  int
		field string
		path  string
	}
	var raws []rawEntry
	for _, it := range t.items("env_file") {
		p := t.pr.interpolated(it.val.Value)
		if it.val.Kind == yaml.MappingNode {
			for _, kv := range source.MapEntries(it.val) {
				if kv[0].Value == "path" {
					p = t.pr.interpolated(kv[1].Value)
				}
			}
		}
		raws = append(raws, rawEntry{file: it.file, field: it.path, path: p})
	}
	for i, ef := range sc.EnvFiles {
		field, written := "env_file", ef.Path
		tr := t.in(t.pick("env_file"))
		for _, r := range raws {
			if cv.pr.resolve(r.path) == ef.Path {
				field, written = r.field, r.path
				tr = t.in(r.file)
				break
			}
		}
		if len(sc.EnvFiles) == 1 && len(raws) == 1 {
			field, written, tr = raws[0].field, raws[0].path, t.in(raws[0].file)
		}
		_ = i
		display := cv.pr.displayPath(ef.Path)
		if hasSentinel(ef.Path) {
			tr.Warn(field, "", fmt.Sprintf("uses %s, which is not set: not read", varList(sentinelVars(ef.Path))))
			continue
		}
		st, ok := fileExists(ef.Path)
		if !ok || st.IsDir() {
			if !bool(ef.Required) {
				tr.Warn(field, "", fmt.Sprintf("optional env_file %s is not there: nothing loaded, as compose does", written))
				continue
			}
			name := service.FillKey("envFile", baseName(written))
			ref := cv.svc.AddValue(name, "", fmt.Sprintf("env_file %s was not found beside the compose file: put its variables in this service's config (secrets in Secrets Manager)", written))
			if main {
				c.EnvFromConfig = true
			}
			tr.Fill(field, "values fill."+ref, fmt.Sprintf("%s not found (%s): its variables are missing; add them to the service's config and convert again", written, display))
			continue
		}
		data, err := os.ReadFile(ef.Path)
		if err != nil {
			tr.Warn(field, "", fmt.Sprintf("cannot read %s: %v", display, err))
			continue
		}
		vals := map[string]string{}
		format := ef.Format
		lookup := func(k string) (string, bool) { v, ok := cv.pr.env[k]; return v, ok }
		if err := dotenv.ParseWithFormat(bytes.NewReader(data), ef.Path, vals, lookup, format); err != nil {
			tr.Warn(field, "", fmt.Sprintf("cannot parse %s: %v; its variables are missing", display, err))
			continue
		}
		keys, lines := envFileOrder(data, vals)
		text := strings.Split(string(data), "\n")
		loaded := 0
		for _, k := range keys {
			v := vals[k]
			line := lines[k]
			if _, overridden := sc.Environment[k]; overridden {
				cv.svc.Report.Mapped(display, line, k, "overridden by environment: "+k)
				continue
			}
			var raw string
			if line > 0 && line <= len(text) {
				raw = text[line-1]
			}
			if secret := cv.secretVarsIn(raw, v); len(secret) > 0 {
				// DB_COPY=${DB_PASSWORD}: the value is a secret
				// whatever the key's name.
				c.Env = append(c.Env, service.EnvVar{Name: k, Secret: cv.secretRef(k)})
				cv.svc.Report.Warn(display, line, k, fmt.Sprintf("%s.env[%s] ← Secret", cref, k), fmt.Sprintf("uses %s, which %s", varList(secret), cv.secretMsg(k)))
				continue
			}
			if secretLooking(k, v) {
				c.Env = append(c.Env, service.EnvVar{Name: k, Secret: cv.secretRef(k)})
				cv.svc.Report.Warn(display, line, k, fmt.Sprintf("%s.env[%s] ← Secret", cref, k), cv.secretMsg(k))
				continue
			}
			if main {
				cv.config(k, v)
				loaded++
				cv.svc.Report.Mapped(display, line, k, "ConfigMap key "+k+" (envFrom)")
				continue
			}
			c.Env = append(c.Env, service.EnvVar{Name: k, Value: strings.ReplaceAll(v, "$(", "$$(")})
			cv.svc.Report.Mapped(display, line, k, fmt.Sprintf("%s.env[%s]", cref, k))
		}
		if main && loaded > 0 {
			c.EnvFromConfig = true
		}
		tr.Mapped(field, fmt.Sprintf("%s: %d variables (see %s)", cref+".envFrom ConfigMap", len(keys), display))
	}
	t.Use("env_file")
}

// resolve makes a path from the compose file absolute, as compose-go does.
func (pr *project) resolve(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	abs, err := absPath(joinDir(pr.dir, p))
	if err != nil {
		return p
	}
	return abs
}

func baseName(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexAny(p, "/\\"); i >= 0 {
		return p[i+1:]
	}
	return p
}

var envLineRe = regexp.MustCompile(`^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*[=:]`)

// envFileOrder returns the keys of an env file in file order and the line
// each is set on (the last one, which wins).
func envFileOrder(data []byte, vals map[string]string) ([]string, map[string]int) {
	lines := map[string]int{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		m := envLineRe.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if _, ok := vals[m[1]]; !ok {
			continue
		}
		if _, seen := lines[m[1]]; !seen {
			order = append(order, m[1])
		}
		lines[m[1]] = n
	}
	var rest []string
	for k := range vals {
		if _, ok := lines[k]; !ok {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(order, rest...), lines
}
