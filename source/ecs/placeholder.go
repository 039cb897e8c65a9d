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
	return strings.TrimSpace(image) == "" || maybeTemplated(image) && imagePlaceholderRE.MatchString(image) || redactedRegistry(image)
}

// redactedECRRE matches an ECR registry host whose account id was written
// as a word or a mask (AWS_ACCOUNT_ID.dkr.ecr…, xxxxxxxxxxxx.dkr.ecr…):
// no registry has that name, so the image is a value to fill.
var redactedECRRE = regexp.MustCompile(`^([^./]+)\.dkr\.ecr(?:-fips)?\.([^./]+)\.amazonaws\.com(?:\.cn)?/`)

func redactedRegistry(image string) bool {
	m := redactedECRRE.FindStringSubmatch(image)
	return m != nil && (!accountRE.MatchString(m[1]) && redactedAccount(m[1]) || redactedRegion(m[2]))
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

// keyName joins a name's parts with underscores, as a Secret key, which
// takes [A-Za-z0-9_] (a secret two containers name alike gets the
// container's name appended). Values to fill are named by service.FillKey.
func keyName(parts ...string) string {
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

// wholePlaceholderRE is what the chart refuses to render as a filled
// value: a value that is one placeholder and nothing else.
var wholePlaceholderRE = regexp.MustCompile(`^(<[^>]*>|\$\{[^}]*\}|#\{[^}]*\})$`)

// fillDefault is the value a value to fill starts with: the input's own
// placeholder when the chart recognizes it as one, else "". A value with a
// placeholder inside (arn:aws:iam::#{AccountId}:role/x) or a redacted
// account would render as it is, so it starts empty and its reason quotes
// it.
func fillDefault(s string) string {
	if wholePlaceholderRE.MatchString(strings.TrimSpace(s)) {
		return s
	}
	return ""
}
