package lambda

import (
	"strings"
	"unicode"

	"github.com/cutoverhq/cutover/service"
)

// labelKey turns a tag key into a Kubernetes label key: an optional DNS
// prefix and '/', then at most 63 of [A-Za-z0-9-_.], starting and ending
// with an alphanumeric. ok is false when nothing usable is left.
func labelKey(k string) (string, bool) {
	prefix, name := "", k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		prefix, name = dnsPrefix(k[:i]), k[i+1:]
	}
	name = labelValue(name)
	if name == "" {
		return "", false
	}
	if prefix != "" {
		return prefix + "/" + name, true
	}
	return name, true
}

// dnsPrefix turns a label key prefix into a DNS subdomain: lowercase,
// [a-z0-9.-], alphanumeric at both ends, at most 253 characters.
func dnsPrefix(p string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(p) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := trimLabel(b.String())
	if len(out) > 253 {
		out = trimLabel(out[:253])
	}
	return out
}

// labelValue turns any text into a label value: runs of other characters
// become '-', at most 63 characters, alphanumeric at both ends.
func labelValue(v string) string {
	var b strings.Builder
	dash := false
	for _, r := range v {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	out := trimLabel(b.String())
	if len(out) > 63 {
		out = trimLabel(out[:63])
	}
	return out
}

func trimLabel(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))) })
}

// kebab turns CamelCase logical ids ("OrdersQueueFunction") into
// "orders-queue-function" before SanitizeName, which alone would run the
// words together.
func kebab(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1])) {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	return service.SanitizeName(b.String())
}

// envName turns a trigger or value name into an environment variable
// name: upper case, [A-Z0-9_].
func envName(words ...string) string {
	var b strings.Builder
	for _, w := range words {
		for _, r := range w {
			switch {
			case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
				b.WriteRune(unicode.ToUpper(r))
			case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
				b.WriteByte('_')
			}
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
	}
	return strings.TrimRight(b.String(), "_")
}

// checkpointName names the ConfigMap and the Lease of a stream trigger's
// checkpoint: <service>-<trigger>-checkpoint, both already DNS-1123
// labels. A name longer than a label's 63 characters keeps its head and
// gets 8 hex digits of the full name's SHA-256 before the suffix: the same
// input always gives the same name, and two triggers whose names differ
// only past the cut still get two.
func checkpointName(svc, trigger string) string {
	const suffix = "-checkpoint"
	full := svc + "-" + trigger + suffix
	if len(full) <= 63 {
		return full
	}
	hash := service.NameHash(full)
	head := strings.TrimRight(full[:63-len(hash)-len(suffix)], "-")
	return head + hash + suffix
}
