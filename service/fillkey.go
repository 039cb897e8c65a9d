package service

import (
	"strings"
	"unicode"
)

// FillKey builds the name of a value to fill from words, the one way every
// importer and renderer names them: lowerCamel, ASCII letters and digits
// only, so each is a plain key under fill: in a service's values file.
// Words in capitals (environment variable names) are taken as words:
// FillKey("env", "DB_HOST") is "envDbHost", FillKey("role", "arn") is
// "roleArn", FillKey("image", "otel-collector") is "imageOtelCollector".
func FillKey(words ...string) string {
	var b strings.Builder
	for _, w := range words {
		for _, part := range strings.FieldsFunc(w, func(r rune) bool { return !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))) }) {
			if b.Len() == 0 {
				b.WriteString(lowerFirst(part))
				continue
			}
			b.WriteString(upperFirst(part))
		}
	}
	if b.Len() == 0 {
		return "value"
	}
	return b.String()
}

func lowerFirst(s string) string {
	if s == strings.ToUpper(s) {
		return strings.ToLower(s)
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func upperFirst(s string) string {
	if s == strings.ToUpper(s) {
		s = strings.ToLower(s)
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
