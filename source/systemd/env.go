package systemd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

var (
	notSecretRe = regexp.MustCompile(`(?i)(_file|_path|_dir|_arn|_id|_name|_ttl|_timeout|_length|_enabled|_header)$`)
	envNameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// secretLooking reports whether a variable holds a secret, by name or by
// value (a URL with a password, a webhook URL: source.SecretURL); "" is a
// value the service manager passes, so a webhook's name says enough. Such
// values are never copied.
func secretLooking(name, value string) bool {
	if source.SecretValue(name, value) {
		return true
	}
	if notSecretRe.MatchString(name) {
		return false
	}
	return source.SecretName(name)
}

// secretKey is the Secrets Manager entry proposed for a unit's secrets:
// one secret per service, one property per variable.
func (cv *conv) secretKey() string { return "vm/" + cv.svc.Name }

func (cv *conv) secretRef(name string) string {
	for _, s := range cv.svc.Secrets {
		if s.Name == name {
			return name
		}
	}
	cv.svc.Secrets = append(cv.svc.Secrets, service.Secret{Name: name, Source: service.SecretsManager, Key: cv.secretKey(), Property: name})
	return name
}

func (cv *conv) secretMsg(name string) string {
	return fmt.Sprintf("looks like a secret: the value was not copied; store it in AWS Secrets Manager secret %s, property %s (the ExternalSecret reads it from there)", cv.secretKey(), name)
}

func (cv *conv) setEnv(name string, ev service.EnvVar) {
	for i := range cv.c.Env {
		if cv.c.Env[i].Name == name {
			cv.c.Env[i] = ev
			return
		}
	}
	cv.c.Env = append(cv.c.Env, ev)
}

// environment maps Environment=: space-separated VAR=value assignments,
// quoted as systemd quotes words; a later assignment of a variable wins.
func (cv *conv) environment() {
	ref := "containers[" + cv.c.Name + "]"
	for _, e := range cv.list("Service", "Environment") {
		words, err := splitWords(e.Value)
		if err != nil {
			cv.warn(e, "", "cannot parse: "+err.Error()+"; not converted")
			continue
		}
		var notes []string
		var targets []string
		for _, w := range words {
			name, value, ok := strings.Cut(w, "=")
			if !ok || !envNameRe.MatchString(name) {
				notes = append(notes, fmt.Sprintf("%q is not a VAR=value assignment (systemd ignores it)", w))
				continue
			}
			if cv.sp.template && cv.sp.instance == "" && strings.Contains(value, "%i") && !secretLooking(name, value) {
				// An env value may refer to an earlier env var: the
				// instance becomes $(INSTANCE), a value to fill.
				cv.instanceValue()
				value = cv.expand(e, strings.ReplaceAll(escapeDollar(value), "%i", "$(INSTANCE)"))
				cv.setEnv(name, service.EnvVar{Name: name, Value: value})
				targets = append(targets, name+" (with $(INSTANCE))")
				continue
			}
			value = cv.expand(e, value)
			if secretLooking(name, value) {
				cv.setEnv(name, service.EnvVar{Name: name, Secret: cv.secretRef(name)})
				notes = append(notes, name+" "+cv.secretMsg(name))
				targets = append(targets, name+" ← Secret")
				continue
			}
			cv.env[name] = value
			cv.config(name, value)
			cv.setEnv(name, service.EnvVar{Name: name, ConfigKey: name})
			targets = append(targets, name+" ← ConfigMap")
		}
		target := ref + ".env " + strings.Join(targets, ", ")
		if len(notes) > 0 {
			cv.warn(e, target, strings.Join(notes, "; "))
		} else {
			cv.mapped(e, target)
		}
	}
	for _, e := range cv.list("Service", "PassEnvironment") {
		for _, name := range strings.Fields(e.Value) {
			if secretLooking(name, "") {
				cv.setEnv(name, service.EnvVar{Name: name, Secret: cv.secretRef(name)})
				continue
			}
			r := cv.svc.AddValue(service.FillKey("env", name), "", "passed from the VM's service manager environment")
			cv.setEnv(name, service.EnvVar{Name: name, ValueRef: r})
		}
		cv.fill(e, "values fill", "the values came from the VM's service manager: fill them (secret-looking ones became Secrets Manager references)")
	}
	for _, e := range cv.list("Service", "UnsetEnvironment") {
		cv.drop(e, "a container starts with only the variables it is given")
	}
}

func (cv *conv) config(key, value string) {
	if cv.svc.Config == nil {
		cv.svc.Config = map[string]string{}
	}
	cv.svc.Config[key] = value
}

// environmentFiles maps EnvironmentFile=. The file lives on the VM; it is
// read when it sits beside the unit (by base name, or under the same path
// below the unit's directory), and its variables become ConfigMap keys
// loaded with envFrom. A file that is not there becomes a value to fill,
// unless the - prefix made it optional.
func (cv *conv) environmentFiles() {
	for _, e := range cv.list("Service", "EnvironmentFile") {
		p := cv.expand(e, e.Value)
		optional := strings.HasPrefix(p, "-")
		p = strings.TrimPrefix(p, "-")
		local := cv.localFile(p)
		if local == "" {
			cv.missingEnvFiles = append(cv.missingEnvFiles, p)
			name := service.FillKey("envFile", filepath.Base(p))
			reason := fmt.Sprintf("EnvironmentFile %s is on the VM and was not given: put its variables in this service's config (secrets in Secrets Manager)", p)
			r := cv.svc.AddValue(name, "", reason)
			for i := range cv.svc.Values {
				// /etc/default/x and /etc/sysconfig/x (Debian's and
				// Red Hat's place, one of which exists) share a value.
				v := &cv.svc.Values[i]
				if v.Name == r && !strings.Contains(v.Reason, p+" ") {
					v.Reason = strings.Replace(v.Reason, " is on the VM", " or "+p+" is on the VM", 1)
				}
			}
			cv.c.EnvFromConfig = true
			msg := fmt.Sprintf("%s was not found beside the unit: copy it next to %s and convert again, or fill its variables", p, filepath.Base(cv.u.Main.Path))
			if optional {
				msg += " (optional on the VM: the - prefix; it may not exist there either)"
			}
			cv.fill(e, "values fill."+r, msg)
			continue
		}
		data, err := os.ReadFile(local)
		if err != nil {
			cv.warn(e, "", fmt.Sprintf("cannot read %s: %v", local, err))
			continue
		}
		keys, vals, lines := parseEnvFile(data)
		loaded := 0
		for _, k := range keys {
			v := vals[k]
			if secretLooking(k, v) {
				cv.setEnv(k, service.EnvVar{Name: k, Secret: cv.secretRef(k)})
				cv.svc.Report.Warn(local, lines[k], k, fmt.Sprintf("containers[%s].env[%s] ← Secret", cv.c.Name, k), cv.secretMsg(k))
				continue
			}
			cv.env[k] = v
			cv.config(k, v)
			loaded++
			cv.svc.Report.Mapped(local, lines[k], k, "ConfigMap key "+k+" (envFrom)")
		}
		if loaded > 0 {
			cv.c.EnvFromConfig = true
		}
		cv.mapped(e, fmt.Sprintf("containers[%s].envFrom ConfigMap: %d variables (read from %s)", cv.c.Name, len(keys), local))
	}
}

// localFile finds a VM path beside the unit file.
func (cv *conv) localFile(p string) string {
	dir := filepath.Dir(cv.u.Main.Path)
	for _, cand := range []string{filepath.Join(dir, filepath.FromSlash(p)), filepath.Join(dir, filepath.Base(p))} {
		if st, err := os.Stat(cand); err == nil && !st.IsDir() {
			return cand
		}
	}
	return ""
}

var envFileLineRe = regexp.MustCompile(`^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=(.*)$`)

// parseEnvFile reads an EnvironmentFile= the way systemd does: VAR=value
// lines, # and ; comments, values in single or double quotes, a trailing
// backslash continuing a line. It returns keys in file order, values, and
// each key's last line.
func parseEnvFile(data []byte) ([]string, map[string]string, map[string]int) {
	vals := map[string]string{}
	lines := map[string]int{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxLine)
	n := 0
	for sc.Scan() {
		n++
		start := n
		line := sc.Text()
		for strings.HasSuffix(line, "\\") && sc.Scan() {
			n++
			line = strings.TrimSuffix(line, "\\") + sc.Text()
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		m := envFileLineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v := strings.TrimSpace(m[2])
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			q := v[0]
			v = v[1 : len(v)-1]
			if q == '"' {
				v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
			}
		} else if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		if _, seen := lines[m[1]]; !seen {
			order = append(order, m[1])
		}
		vals[m[1]] = v
		lines[m[1]] = start
	}
	return order, vals, lines
}
