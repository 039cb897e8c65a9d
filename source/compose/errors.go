package compose

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

// compose-go errors name fields in three ways: "validating FILE: PATH msg"
// (schema), "'services[web].ports[0]' msg" (decoding) and `service "web"
// msg` (consistency checks). loadError turns each into an *InputError with
// the field path of the report and its line in the raw file.

var (
	validatingRe = regexp.MustCompile(`^validating (\S+): (\S*)\s*(.*)$`)
	quotedPathRe = regexp.MustCompile(`'((?:services|volumes|networks|secrets|configs)[^']*)'`)
	serviceRe    = regexp.MustCompile(`service "?([^" ]+)"? (.*)$`)
	additionalRe = regexp.MustCompile(`additional propert(?:y|ies) '([^']+)'`)
	interpRe     = regexp.MustCompile(`interpolating (\S+?):? (.*)$`)
	bracketRe    = regexp.MustCompile(`\[([^\]]*)\]`)
)

// consistencyFields maps words of compose-go's consistency errors to the
// service field they are about.
var consistencyFields = []struct{ word, field string }{
	{"depends on", "depends_on"},
	{"undefined volume", "volumes"},
	{"undefined network", "networks"},
	{"undefined secret", "secrets"},
	{"undefined config", "configs"},
	{"undefined build secret", "build.secrets"},
	{"network_mode", "network_mode"},
	{"neither an image nor a build", ""},
	{"dockerfile", "build"},
	{"extends", "extends"},
	{"deploy.replicas", "deploy.replicas"},
}

func (pr *project) loadError(err error) error {
	var ie *source.InputError
	if errors.As(err, &ie) {
		return err
	}
	msg := err.Error()
	f := pr.files[pr.main]
	for _, rf := range pr.files {
		if abs, e := absPath(rf.Path); e == nil && strings.Contains(msg, abs) {
			f = rf
			msg = strings.ReplaceAll(msg, abs, rf.Path)
		}
	}
	// "decoding failed due to the following error(s):\n\n'…' …"
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "decoding failed due to the following error(s):"))
	field := ""
	text := msg
	switch {
	case interpRe.MatchString(msg):
		m := interpRe.FindStringSubmatch(msg)
		field, text = normalizeErrPath(m[1]), m[2]
	case validatingRe.MatchString(msg):
		m := validatingRe.FindStringSubmatch(msg)
		field, text = m[2], m[3]
		if a := additionalRe.FindStringSubmatch(text); a != nil {
			field = joinPath(field, a[1])
			text = "unknown field (not in the compose specification)"
		}
		if text == "false schema" {
			text = "unknown field (not in the compose specification)"
		}
		field = normalizeErrPath(field)
	case quotedPathRe.MatchString(msg):
		m := quotedPathRe.FindStringSubmatch(msg)
		field = normalizeErrPath(m[1])
		text = strings.TrimSpace(strings.Replace(msg, m[0], "", 1))
	case serviceRe.MatchString(msg):
		m := serviceRe.FindStringSubmatch(msg)
		field = "services." + m[1]
		for _, c := range consistencyFields {
			if strings.Contains(m[2], c.word) {
				if c.field != "" {
					field = joinPath(field, c.field)
				}
				break
			}
		}
		text = strings.TrimSuffix(m[2], ": invalid compose project")
		text = "service " + text
	}
	if field == "" {
		// Some messages name only the bad value ("Invalid hostPort:
		// http"): find the service field that holds it.
		if i := strings.LastIndex(text, ": "); i >= 0 {
			if fi, p := pr.findValue(strings.TrimSpace(text[i+2:])); p != "" {
				f, field = pr.files[fi], p
			}
		}
	}
	if field != "" && f.node(field) == nil {
		// A field that only an included or extended file has (Line
		// would answer with an ancestor's line in any file).
		for _, rf := range pr.files {
			if rf.node(field) != nil {
				f = rf
				break
			}
		}
	}
	text = strings.TrimSpace(text)
	if n := f.node(field); field != "" && n != nil && n.Kind == yaml.ScalarNode {
		// An included file's unset variable that compose-go left blank
		// where no value to fill can stand: say which.
		var unset []string
		for _, m := range varRefRe.FindAllStringSubmatch(n.Value, -1) {
			if pr.ip.blank[m[1]] {
				unset = append(unset, m[1])
			}
		}
		if len(unset) > 0 {
			text += fmt.Sprintf(" (%q uses %s, which is not set: set it %s)", n.Value, varList(unset), setVarAdvice)
		}
	}
	return &source.InputError{File: f.Path, Line: f.pos.Line(field), Field: field, Err: errors.New(text)}
}

// setVarAdvice says how to give convert a variable: convert reads .env
// beside the compose file, and its own environment only with --use-env.
const setVarAdvice = "in .env, or in the environment with --use-env, and convert again"

// varRefRe finds the variable names of $NAME and ${NAME…} expressions.
var varRefRe = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// normalizeErrPath turns compose-go's "services[web].ports[0]" and
// "services.web.ports.0" into the report's "services.web.ports[0]".
func normalizeErrPath(p string) string {
	p = bracketRe.ReplaceAllStringFunc(p, func(m string) string {
		inner := m[1 : len(m)-1]
		if _, err := strconv.Atoi(inner); err == nil {
			return m
		}
		return "." + inner
	})
	parts := strings.Split(p, ".")
	var b strings.Builder
	for i, part := range parts {
		if _, err := strconv.Atoi(part); err == nil && i > 0 {
			b.WriteString("[" + part + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

// findValue returns the file and path of the first service field whose
// value contains token.
func (pr *project) findValue(token string) (int, string) {
	if len(token) < 2 {
		return 0, ""
	}
	for i, f := range pr.files {
		services := f.node("services")
		if services == nil || services.Kind != yaml.MappingNode {
			continue
		}
		for _, kv := range source.MapEntries(services) {
			if p := findIn(resolve(kv[1]), "services."+kv[0].Value, token, 0); p != "" {
				return i, p
			}
		}
	}
	return 0, ""
}

func findIn(n *yaml.Node, path, token string, depth int) string {
	if n == nil || depth > 50 {
		return ""
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.Contains(n.Value, token) {
			return path
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := findIn(resolve(c), path+"["+strconv.Itoa(i)+"]", token, depth+1); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for _, kv := range source.MapEntries(n) {
			if p := findIn(resolve(kv[1]), path+"."+kv[0].Value, token, depth+1); p != "" {
				return p
			}
		}
	}
	return ""
}
