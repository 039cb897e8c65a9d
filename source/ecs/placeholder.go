package ecs

import (
	"regexp"
	"strings"
)

// Pipelines render task definitions from templates, and the files users
// export are often the templates themselves: CodePipeline's <IMAGE1_NAME>,
// shell and envsubst ${IMAGE}, Go and Helm {{IMAGE}}, Octopus #{Image},
// token replacers' __IMAGE__, and bare $IMAGE.
var (
	imagePlaceholderRE = regexp.MustCompile(`<[A-Za-z0-9_.\-]+>|\$\{[^}]*\}|\{\{[^}]*\}\}|#\{[^}]*\}|__[A-Za-z0-9_]+__|^\$[A-Za-z_][A-Za-z0-9_]*$|%[A-Za-z_][A-Za-z0-9_]*%`)
	// In other values only the unambiguous forms count: "<b>" or "%d" in a
	// plain environment value is text, not a placeholder.
	valuePlaceholderRE = regexp.MustCompile(`\$\{[^}]*\}|\{\{[^}]*\}\}|#\{[^}]*\}`)
)

// imagePlaceholder reports whether image is missing or templated, and so
// must become a value the user fills.
func imagePlaceholder(image string) bool {
	return strings.TrimSpace(image) == "" || maybeTemplated(image) && imagePlaceholderRE.MatchString(image)
}

// maybeTemplated is a cheap test that lets most values skip the regular
// expressions: every placeholder form has one of these characters.
func maybeTemplated(s string) bool { return strings.ContainsAny(s, "<${%#_") }

// hasPlaceholder reports whether an identifier (an ARN, a parameter name)
// holds an unrendered template variable. Identifiers cannot contain "<",
// "$", "{" or "%", so every form counts.
func hasPlaceholder(s string) bool { return maybeTemplated(s) && imagePlaceholderRE.MatchString(s) }

// envPlaceholder reports whether an environment value holds an unrendered
// template variable.
func envPlaceholder(s string) bool { return maybeTemplated(s) && valuePlaceholderRE.MatchString(s) }

// valueName turns a container or variable name into a key under `fill:`
// that Helm templates can use as .Values.fill.<key>.
func valueName(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('_')
		}
		for _, r := range p {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}
