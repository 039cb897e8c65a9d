package render

import "regexp"

// placeholderRE matches what CI pipelines leave in place of a whole value:
// <IMAGE1_NAME>, ${IMAGE}, #{Image}, {{image}}, __IMAGE__, $IMAGE, %IMAGE%.
// The chart's templates reject the same forms.
var placeholderRE = regexp.MustCompile(`^(<[^>]*>|\$\{[^}]*\}|#\{[^}]*\}|\{\{[^}]*\}\}|__[A-Za-z0-9_]+__|\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_][A-Za-z0-9_]*%)$`)

// IsPlaceholder reports whether s, as a whole, is a CI placeholder the
// renderers must not treat as a real value (a role ARN, a secret key, a
// file system id). A value that only contains one is not.
func IsPlaceholder(s string) bool { return placeholderRE.MatchString(s) }
