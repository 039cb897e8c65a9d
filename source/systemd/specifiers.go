package systemd

import (
	"fmt"
	"strings"
)

// specifiers expands the % specifiers of systemd.unit(5) "Specifiers" for
// one unit. Paths a container has as well (/run, /var/lib, …) resolve to
// their system-unit values; what depends on the machine (%H host name,
// %m machine id) or on an instance the input does not name stays, with a
// warning.
type specifiers struct {
	unit     string // "worker@eu-1.service"
	prefix   string // "worker"
	instance string // "eu-1"; "" for a plain unit or an uninstantiated template
	template bool
	user     string // User=, "" for root
}

// expand returns s with its specifiers resolved, and the specifiers it
// could not resolve.
func (sp *specifiers) expand(s string) (string, []string) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	var bad []string
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		c := s[i]
		if v, ok := sp.value(c); ok {
			b.WriteString(v)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(c)
		bad = append(bad, "%"+string(c))
	}
	return b.String(), bad
}

func (sp *specifiers) value(c byte) (string, bool) {
	user := sp.user
	switch c {
	case '%':
		return "%", true
	case 'n':
		return sp.unit, true
	case 'N':
		return strings.TrimSuffix(sp.unit, ".service"), true
	case 'p':
		return sp.prefix, true
	case 'P':
		return unescapeName(sp.prefix), true
	case 'j':
		return lastDash(sp.prefix), true
	case 'J':
		return unescapeName(lastDash(sp.prefix)), true
	case 'i':
		if sp.template && sp.instance == "" {
			return "", false
		}
		return sp.instance, true
	case 'I':
		if sp.template && sp.instance == "" {
			return "", false
		}
		return unescapeName(sp.instance), true
	case 'f':
		if sp.template && sp.instance == "" {
			return "", false
		}
		return "/" + strings.ReplaceAll(unescapeName(sp.instance), "-", "/"), true
	case 'u':
		if user == "" {
			return "root", true
		}
		return user, true
	case 'U':
		if user == "" || user == "root" {
			return "0", true
		}
		if isNumeric(user) {
			return user, true
		}
		return "", false
	case 'h':
		if user == "" || user == "root" || user == "0" {
			return "/root", true
		}
		return "", false
	case 's':
		return "/bin/sh", true
	case 't':
		return "/run", true
	case 'S':
		return "/var/lib", true
	case 'C':
		return "/var/cache", true
	case 'L':
		return "/var/log", true
	case 'E':
		return "/etc", true
	case 'T':
		return "/tmp", true
	case 'V':
		return "/var/tmp", true
	}
	return "", false
}

// describe says why a specifier could not be resolved.
func (sp *specifiers) describe(bad []string) string {
	var parts []string
	for _, b := range bad {
		switch b {
		case "%i", "%I", "%f":
			parts = append(parts, b+" (the template's instance: not given)")
		case "%H", "%l", "%q":
			parts = append(parts, b+" (the VM's host name: a pod's is its own name)")
		case "%m", "%b", "%o", "%M", "%A", "%B", "%w", "%W", "%v", "%a":
			parts = append(parts, b+" (a property of the VM)")
		case "%h", "%U":
			parts = append(parts, b+" (depends on user "+sp.user+" on the VM)")
		case "%d":
			parts = append(parts, b+" (systemd credentials: mount a Secret instead)")
		default:
			parts = append(parts, b)
		}
	}
	return "unresolved specifiers " + strings.Join(parts, ", ")
}

func lastDash(s string) string {
	if i := strings.LastIndex(s, "-"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// unescapeName undoes systemd-escape: "-" is "/", "\x2d" is "-".
func unescapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			var n int
			if _, err := fmt.Sscanf(s[i+2:i+4], "%02x", &n); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		if s[i] == '-' {
			b.WriteByte('/')
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
